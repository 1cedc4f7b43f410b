//! A thread that owns a SQLite connection and runs jobs on it one after another.
//!
//! Through tokio's blocking pool and a mutex, concurrent calls each took a pool thread that then
//! queued at the mutex: at 100,000 secrets a third of the server's time went to futex waits and
//! wake-ups. Here a call costs one wake-up each way, and the connection's thread stays warm.
//!
//! On an idle machine those two wake-ups cost more than a short write: 0.15–0.28 ms of a DMS
//! statement's 1 ms went to handing its one-row record to the thread and back (finding 42).
//! [`Worker::run_here_if_free`] runs such a job on the caller's thread when no job holds the
//! connection.

use rusqlite::Connection;
use std::sync::{Arc, Mutex, TryLockError, mpsc};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub struct Worker {
    jobs: mpsc::Sender<Job>,
    /// Held by the thread for each job, and by a caller running a job itself.
    conn: Arc<Mutex<Connection>>,
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
    pub fn start(name: &str, conn: Connection) -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let conn = Arc::new(Mutex::new(conn));
        let shared = conn.clone();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            while let Ok(job) = queue.recv() {
                let mut c = lock(&shared);
                // A job that panics fails its own call (its answer is never sent), not the
                // calls after it; the panic is caught inside the lock, which it leaves unpoisoned.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut c)));
            }
        })?;
        Ok(Worker { jobs, conn, thread: Some(thread) })
    }

    /// Queues `f` after the jobs queued before it, and does not wait for it.
    pub fn queue(&self, f: impl FnOnce(&mut Connection) + Send + 'static) -> Result<(), Stopped> {
        self.jobs.send(Box::new(f)).map_err(|_| Stopped)
    }

    /// Runs `f` at once on the calling thread when no job holds the connection; otherwise queues
    /// it as [`Worker::run`] does. Only for short jobs that depend on no job queued before them
    /// (they may run first): the caller's thread, a runtime thread, is blocked while `f` runs.
    pub async fn run_here_if_free<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> T + Send + 'static) -> Result<T, Stopped> {
        {
            let free = match self.conn.try_lock() {
                Ok(c) => Some(c),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut c) = free {
                return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut c))).map_err(|_| Stopped);
            }
        }
        self.run(f).await
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

fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

    #[tokio::test]
    async fn a_job_runs_on_the_callers_thread_only_while_the_connection_is_free() {
        let w = std::sync::Arc::new(Worker::start("test-worker", Connection::open_in_memory().unwrap()).unwrap());
        let here = std::thread::current().id();
        let ran_on = w.run_here_if_free(|_| std::thread::current().id()).await.unwrap();
        assert_eq!(ran_on, here, "a free connection: the caller runs the job itself");

        // A job holds the connection on the worker's thread until told to finish.
        let (finish, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let busy = tokio::spawn({
            let w = w.clone();
            async move {
                w.run(move |_| {
                    let _ = started.send(());
                    let _ = wait.recv();
                })
                .await
            }
        });
        running.await.unwrap();
        let queued = tokio::spawn({
            let w = w.clone();
            async move { w.run_here_if_free(|_| std::thread::current().id()).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!queued.is_finished(), "a busy connection: the job waits for its turn in the queue");
        finish.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_ne!(queued.await.unwrap(), here, "the queued job ran on the worker's thread");

        let failed = w.run_here_if_free(|_| panic!("a job that panics")).await;
        assert_eq!(failed, Err(Stopped));
        assert_eq!(
            w.run_here_if_free(|c| c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0)).unwrap()).await,
            Ok(7),
            "the connection lives on"
        );
    }
}
