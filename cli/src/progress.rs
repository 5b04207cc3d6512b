//! A progress line for the long commands (`verify`, `compact`): on a
//! terminal, stderr shows what is running and for how long, redrawn in
//! place; piped or redirected, nothing is printed, so scripts see only the
//! result. The engine calls report no fraction done, so this shows the
//! phase and the elapsed time rather than a percentage.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

impl Progress {
    pub(crate) fn start(what: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress {
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_string();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut tick = 0usize;
            loop {
                let secs = start.elapsed().as_secs_f64();
                eprint!("\r{} {what} ... {secs:.1}s", SPINNER[tick % SPINNER.len()]);
                let _ = std::io::stderr().flush();
                tick += 1;
                if rx.recv_timeout(Duration::from_millis(200))
                    != Err(mpsc::RecvTimeoutError::Timeout)
                {
                    eprintln!(
                        "\r  {what} ... done in {:.1}s",
                        start.elapsed().as_secs_f64()
                    );
                    return;
                }
            }
        });
        Progress {
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub(crate) fn finish(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
