//! A connection's own wake-ups, handled where they happen.
//!
//! One client connection is one task: hyper's server connection polls the service future, which
//! drives the upstream connection it uses ([`super::upstream`]'s pool) and then the response
//! body. Driving the upstream connection completes the response future and fills the body
//! channel, and hyper then wakes the waker those registered: the task's own, while the task is
//! being polled. Tokio takes a wake of a running task for a yield: the task goes to the back of
//! the run queue and an idle worker is woken to steal it. That was about three futex wakes per
//! relayed call, each a context switch and often a hop to the other CPU.
//!
//! [`poll_own_wakes`] gives the future a waker that, while the future is being polled, only
//! notes the wake; the future is then polled again at once (at most [`AGAIN`] times per poll,
//! after which it yields as it asked, so tokio's cooperative budget and hyper's own yields still
//! work). A wake from anywhere else (the I/O driver, a timer, another task) reaches the task's
//! waker as before.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// How many times one poll polls the future again after it woke itself.
pub const AGAIN: usize = 8;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

struct Shared {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            // Being polled: the poll loop sees it and polls again.
            Ok(_) => {}
            Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

/// Runs `fut`, polling it again at once when it wakes itself while being polled (see the
/// [module docs](self)).
pub async fn poll_own_wakes<F: Future>(fut: F) -> F::Output {
    let shared = Arc::new(Shared {
        state: AtomicU8::new(IDLE),
        task: AtomicWaker::new(),
    });
    let waker = Waker::from(shared.clone());
    let mut fut = pin!(fut);
    poll_fn(move |cx| {
        // Registered first: a wake that finds the state idle goes to this task.
        shared.task.register(cx.waker());
        let mut inner = Context::from_waker(&waker);
        for _ in 0..=AGAIN {
            shared.state.store(POLLING, Ordering::Release);
            let poll = fut.as_mut().poll(&mut inner);
            // Swapped, not stored: a wake either lands before this (and is seen here) or
            // after it (and wakes the task).
            let woken = shared.state.swap(IDLE, Ordering::AcqRel) == WOKEN;
            if poll.is_ready() || !woken {
                return poll;
            }
        }
        // Still waking itself: let it yield, as it asked.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }
    use std::pin::Pin;

    #[test]
    fn a_wake_during_the_poll_polls_again_without_waking_the_task() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut polls = 0;
        let mut fut = Box::pin(poll_own_wakes(poll_fn(|cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(polls)
            }
        })));
        assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(3));
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "the task was not woken");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut polls = 0usize;
        let mut fut = Box::pin(poll_own_wakes(poll_fn(|cx| {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        })));
        assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
        drop(fut);
        assert_eq!(polls, AGAIN + 1);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "it yielded: the task was woken once"
        );
    }

    #[test]
    fn a_wake_after_the_poll_wakes_the_task() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let kept: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
        let k = kept.clone();
        let mut fut = Box::pin(poll_own_wakes(poll_fn(move |cx| {
            let mut k = k.lock().expect("lock");
            if k.is_none() {
                *k = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })));
        assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // From elsewhere (say, the I/O driver), after the poll: the task is woken.
        let w = kept.lock().expect("lock").clone().expect("registered");
        w.wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_from_another_thread_are_never_lost() {
        // A channel fed from another thread while the receiving task is being polled or not:
        // every message arrives.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let sender = std::thread::spawn(move || {
            for i in 0..20_000 {
                tx.send(i).expect("receiver alive");
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            poll_own_wakes(async move {
                let mut n = 0u32;
                while let Some(i) = rx.recv().await {
                    assert_eq!(i, n);
                    n += 1;
                }
                n
            }),
        )
        .await
        .expect("a wake was lost: the receiver never finished");
        sender.join().expect("sender");
        assert_eq!(got, 20_000);
    }
}
