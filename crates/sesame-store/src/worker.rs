//! A thread that owns a SQLite connection and runs jobs on it one after another.
//!
//! Through tokio's blocking pool and a mutex, concurrent calls each took a pool thread that then
//! queued at the mutex: at 100,000 secrets a third of the server's time went to futex waits and
//! wake-ups. Here a call costs one wake-up each way, and the connection's thread stays warm.

use rusqlite::Connection;
use std::sync::mpsc;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub struct Worker {
    jobs: mpsc::Sender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A call that got no answer: its job panicked, or the connection's thread has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the database call did not finish on its connection's thread")
    }
}

impl Worker {
    /// Starts the thread; it ends, and closes the connection, when the worker is dropped.
    pub fn start(name: &str, mut conn: Connection) -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            while let Ok(job) = queue.recv() {
                // A job that panics fails its own call (its answer is never sent), not the
                // calls after it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
            }
        })?;
        Ok(Worker { jobs, thread: Some(thread) })
    }

    /// Runs `f` on the connection after the jobs queued before it.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> T + Send + 'static) -> Result<T, Stopped> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |c: &mut Connection| {
                let _ = done.send(f(c));
            }))
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

impl Drop for Worker {
    /// Waits for the queued jobs and for the connection to close, so that the file is free (its
    /// lock released) once the worker is gone.
    fn drop(&mut self) {
        // Dropping the sender closes the queue: the thread runs what is queued, then ends.
        drop(std::mem::replace(&mut self.jobs, mpsc::channel().0));
        if let Some(t) = self.thread.take().filter(|t| t.thread().id() != std::thread::current().id()) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_and_a_panic_fails_only_its_own_call() {
        let w = Worker::start("test-worker", Connection::open_in_memory().unwrap()).unwrap();
        w.run(|c| c.execute_batch("CREATE TABLE t (n INTEGER)").unwrap()).await.unwrap();
        let calls: Vec<_> = (0..20).map(|n| w.run(move |c| c.execute("INSERT INTO t VALUES (?1)", [n]).unwrap())).collect();
        for call in calls {
            call.await.unwrap();
        }
        let failed = w.run(|_| panic!("a job that panics")).await;
        assert_eq!(failed, Err(Stopped));
        let order: Vec<i64> = w
            .run(|c| c.prepare("SELECT n FROM t").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect())
            .await
            .unwrap();
        assert_eq!(order, (0..20).collect::<Vec<_>>(), "jobs ran in the order they were queued, and the thread lives on");
    }
}
