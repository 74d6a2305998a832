//! The REST fallback: a few worker threads, each with its own
//! [`RestClient`], taking calls from one queue. A slow REST answer holds
//! one worker, never the exec thread (and, with several workers, never the
//! other side's call either).
//!
//! Used while no WebSocket API session is up, when none is configured, and
//! for [`Call::SyncClock`].

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::exec::binance::errors::BinanceError;
use crate::exec::binance::gateway::{Answer, Call, Counters, GatewayEvent, Job, Reply, Shared, Target, Transport};
use crate::exec::binance::rest::{OrderRef, RestClient};

/// Starts one worker per client.
pub(crate) fn start(
    clients: Vec<RestClient>,
    recv_window: std::time::Duration,
    jobs: Receiver<Job>,
    events: Sender<GatewayEvent>,
    shared: Arc<Shared>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let jobs = Arc::new(Mutex::new(jobs));
    let mut threads = Vec::with_capacity(clients.len());
    for (i, mut rest) in clients.into_iter().enumerate() {
        let (jobs, events, shared) = (jobs.clone(), events.clone(), shared.clone());
        let t = std::thread::Builder::new().name(format!("mmbot-rest-{i}")).spawn(move || loop {
            // Holding the lock while waiting is the usual shared-queue
            // pattern: the other workers are busy or waiting for it anyway.
            let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                Ok(job) => job,
                // Every sender is gone: the gateway stopped.
                Err(_) => return,
            };
            let timestamp_ms = shared.server_ms();
            let sent_at = Instant::now();
            Counters::inc(&shared.counters.sent_rest);
            let result = execute(&mut rest, &job.symbol, &job.call);
            if let Ok(Reply::Clock { offset_ms }) = &result {
                shared.set_clock_offset_ms(*offset_ms);
            }
            // A refusal before sending or no answer at all is no round trip.
            let answered = match &result {
                Ok(_) => true,
                Err(e) => !matches!(
                    e,
                    BinanceError::Unknown { .. }
                        | BinanceError::Unavailable { .. }
                        | BinanceError::NotSent { .. }
                        | BinanceError::LocalRateLimit { .. }
                        | BinanceError::LocalBan { .. }
                        | BinanceError::LocalFilter { .. }
                        | BinanceError::Invalid(_)
                ),
            };
            if answered {
                shared.record_rtt(job.call.method(), Transport::Rest, sent_at.elapsed());
            }
            let answer = Answer {
                id: job.id,
                method: job.call.method(),
                via: Transport::Rest,
                sent_at,
                timestamp_ms,
                recv_window,
                rtt: sent_at.elapsed(),
                result,
            };
            if events.send(GatewayEvent::Answer(answer)).is_err() {
                return;
            }
        })?;
        threads.push(t);
    }
    Ok(threads)
}

/// One call as the blocking REST client's method.
fn execute(rest: &mut RestClient, symbol: &str, call: &Call) -> Result<Reply, BinanceError> {
    fn target(t: &Target) -> OrderRef<'_> {
        match t {
            Target::OrderId(id) => OrderRef::OrderId(*id),
            Target::ClientId(id) => OrderRef::ClientId(id.as_str()),
        }
    }
    match call {
        Call::Place(o) => rest.place(symbol, o).map(Reply::Order),
        Call::Test(o) => rest.place_test(symbol, o).map(|()| Reply::Tested),
        Call::Cancel(t) => rest.cancel(symbol, target(t)).map(Reply::Order),
        Call::CancelReplace { cancel, new } => rest.replace(symbol, cancel, new).map(Reply::Replaced),
        Call::Query { client_id } => rest.query_order_by_client_id(symbol, client_id).map(Reply::Order),
        Call::OpenOrders => rest.open_orders(symbol).map(Reply::Orders),
        Call::CancelAll => rest.cancel_all(symbol).map(Reply::Orders),
        Call::Account => rest.account().map(Reply::Account),
        Call::MyTrades { order_id } => rest.my_trades(symbol, *order_id).map(Reply::Trades),
        Call::SyncClock => rest.sync_clock().map(|s| Reply::Clock { offset_ms: s.offset_ms }),
    }
}
