//! Tests of the sync rules: spot and USD-M chaining, gaps, snapshots, id
//! sanity, the stale rule and the loss-of-sync accounting.

use super::*;
use crate::hot::msg::Symbol;

fn diff(big_u: u64, u: u64, pu: Option<u64>) -> DepthDiff {
    DepthDiff {
        symbol: Symbol::new(b"btcusdt"),
        event_time: u as i64,
        transact_time: 0,
        first_id: big_u,
        last_id: u,
        prev_last_id: pu,
    }
}

fn snap(id: u64) -> Snapshot {
    Snapshot { symbol: Symbol::default(), last_update_id: id, event_time: 0, transact_time: 0 }
}

fn l(p: i64, q: i64) -> Level {
    Level::new(p, q)
}

/// Feeds events and returns the update ids reported as applied.
struct Run {
    b: SyncedBook,
    applied: Vec<u64>,
}

impl Run {
    fn new() -> Self {
        Self { b: SyncedBook::new(100, 16, 256), applied: vec![] }
    }
    fn diff(&mut self, d: DepthDiff, bids: &[Level]) {
        let applied = &mut self.applied;
        self.b.on_diff(&d, bids, &[l(1000, 1)], &mut |a, _| applied.push(a.update_id));
    }
    fn snap(&mut self, id: u64) {
        let applied = &mut self.applied;
        self.b.on_snapshot(&snap(id), &[l(10, 1)], &[l(1000, 1)], &mut |a, _| applied.push(a.update_id));
    }
}

#[test]
fn spot_buffers_then_syncs_on_the_straddling_event() {
    let mut r = Run::new();
    r.diff(diff(90, 100, None), &[l(11, 1)]);
    r.diff(diff(101, 110, None), &[l(12, 1)]);
    r.diff(diff(111, 120, None), &[l(13, 1)]);
    assert!(r.b.wants_snapshot());
    r.snap(105);
    // 90..100 dropped (u <= 105), 101..110 straddles 106, then 111..120.
    assert_eq!(r.applied, vec![110, 120]);
    assert_eq!(r.b.update_id(), 120);
    assert_eq!(r.b.book().best_bid(), Some(l(13, 1)));
    r.diff(diff(121, 125, None), &[]);
    assert_eq!(r.applied.last(), Some(&125));
    assert_eq!(r.b.stats().gaps, 0);
}

#[test]
fn spot_gap_unsyncs_and_the_next_snapshot_resyncs() {
    let mut r = Run::new();
    r.snap(100);
    r.diff(diff(95, 105, None), &[]);
    r.diff(diff(107, 110, None), &[]); // 106 missing
    assert!(!r.b.is_synced());
    assert_eq!(r.b.stats().gaps, 1);
    assert_eq!(r.b.buffered_len(), 1);
    r.diff(diff(111, 115, None), &[]);
    r.snap(112);
    assert!(r.b.is_synced());
    assert_eq!(r.applied, vec![105, 115]);
    assert_eq!(r.b.stats().resyncs, 1);
}

#[test]
fn snapshot_older_than_the_buffer_is_refused() {
    let mut r = Run::new();
    r.diff(diff(200, 210, None), &[]);
    r.snap(150);
    assert!(r.b.wants_snapshot());
    assert_eq!(r.b.stats().snapshots_too_old, 1);
    r.snap(205);
    assert_eq!(r.applied, vec![210]);
}

#[test]
fn spot_snapshot_just_before_the_first_buffered_event_is_a_clean_hand_over() {
    let mut r = Run::new();
    r.diff(diff(101, 110, None), &[l(11, 1)]);
    r.snap(100);
    assert_eq!((r.applied.clone(), r.b.stats().snapshots_too_old), (vec![110], 0));
    // USD-M needs the first event to contain L itself.
    let mut r = Run::new();
    r.diff(diff(101, 110, Some(99)), &[l(11, 1)]);
    r.snap(100);
    assert_eq!(r.b.stats().snapshots_too_old, 1);
}

#[test]
fn first_event_must_straddle() {
    let mut r = Run::new();
    r.snap(100);
    r.diff(diff(102, 110, None), &[]);
    assert_eq!(r.b.stats().gaps, 1);
    assert!(r.applied.is_empty());
}

#[test]
fn usdm_chains_on_pu_not_on_u() {
    let mut r = Run::new();
    r.diff(diff(50, 60, Some(40)), &[]);
    r.diff(diff(70, 99, Some(60)), &[]);
    r.diff(diff(130, 150, Some(99)), &[]);
    r.snap(95);
    // 50..60 dropped (u < 95); 70..99 straddles 95; 130..150 chains by pu.
    assert_eq!(r.applied, vec![99, 150]);
    r.diff(diff(170, 180, Some(150)), &[]);
    assert_eq!(r.applied.last(), Some(&180));
    r.diff(diff(190, 200, Some(185)), &[]);
    assert_eq!(r.b.stats().gaps, 1);
    assert!(!r.b.is_synced());
}

#[test]
fn usdm_first_event_equal_to_snapshot_id_is_kept() {
    let mut r = Run::new();
    r.snap(100);
    r.diff(diff(90, 100, Some(80)), &[]);
    assert_eq!(r.applied, vec![100]);
}

#[test]
fn crossed_book_forces_resync() {
    let mut r = Run::new();
    r.snap(100);
    r.diff(diff(101, 101, None), &[l(2000, 1)]);
    assert!(!r.b.is_synced());
    assert_eq!(r.b.stats().crossed, 1);
    assert!(r.applied.is_empty());
}

#[test]
fn partial_depth_messages_are_not_resyncs() {
    let mut b = SyncedBook::new(100, 16, 256);
    let mut noop = |_: Applied, _: &Book| {};
    for id in 1..=5 {
        let p = PartialDepth { symbol: Symbol::default(), update_id: id, event_time: 0 };
        b.on_partial(&p, &[l(10, 1)], &[l(20, 1)], &mut noop);
    }
    assert_eq!((b.stats().snapshots, b.stats().resyncs, b.stats().applied), (5, 0, 5));
}

#[test]
fn full_buffer_drops_the_oldest() {
    let mut b = SyncedBook::new(10, 2, 100);
    let mut noop = |_: Applied, _: &Book| {};
    for i in 0..4u64 {
        b.on_diff(&diff(i * 10 + 1, i * 10 + 10, None), &[], &[], &mut noop);
    }
    assert_eq!(b.stats().buffer_overflows, 2);
    assert_eq!(b.buffered_len(), 2);
}

#[test]
fn contradictory_ids_are_malformed_and_never_applied_nor_buffered() {
    let mut r = Run::new();
    r.diff(diff(120, 110, None), &[l(11, 1)]);
    assert_eq!((r.b.stats().malformed_ids, r.b.buffered_len()), (1, 0));
    r.snap(100);
    r.diff(diff(105, 101, None), &[l(11, 1)]);
    r.diff(diff(101, 110, Some(120)), &[l(11, 1)]);
    assert_eq!(r.b.stats().malformed_ids, 3);
    assert!(r.applied.is_empty());
    assert!(r.b.is_synced(), "a malformed diff is not a gap");
    r.diff(diff(101, 105, None), &[l(12, 1)]);
    assert_eq!(r.applied, vec![105]);
}

#[test]
fn an_implausible_id_jump_is_rejected_and_later_diffs_still_apply() {
    let mut r = Run::new();
    r.snap(100);
    r.diff(diff(101, 105, None), &[]);
    // u raised by 10^9: applied, it would make every later diff stale.
    r.diff(diff(106, 1_000_000_106, None), &[l(50, 1)]);
    assert_eq!((r.b.stats().id_jumps, r.b.update_id()), (1, 105));
    assert!(r.b.is_synced());
    r.diff(diff(106, 110, None), &[]);
    assert_eq!(r.applied, vec![105, 110]);
    // Within the limit is fine (a busy second on a busy symbol).
    r.diff(diff(111, 5_000_110, None), &[]);
    assert_eq!(r.applied.last(), Some(&5_000_110));
    // USD-M: the same rule, although pu chains.
    let mut r = Run::new();
    r.snap(100);
    r.diff(diff(90, 105, Some(80)), &[]);
    r.diff(diff(106, 2_000_000_000, Some(105)), &[]);
    r.diff(diff(107, 109, Some(105)), &[]);
    assert_eq!((r.applied.clone(), r.b.stats().id_jumps), (vec![105, 109], 1));
}

#[test]
fn a_quiet_usdm_contract_is_not_taken_for_a_jump() {
    // USD-M ids are global: after 10 minutes without a change on this
    // contract, its next diff is ~5e7 ids ahead (80k a second), far past
    // max_id_jump, yet pu chains: it applies. A 10^9 jump one second
    // after the book moved is still refused.
    let mut r = Run::new();
    r.b.set_time(1_000_000_000);
    r.snap(100);
    r.diff(diff(90, 105, Some(80)), &[]);
    r.b.set_time(601_000_000_000);
    r.diff(diff(48_000_000, 48_000_010, Some(105)), &[]);
    assert_eq!((r.applied.clone(), r.b.stats().id_jumps), (vec![105, 48_000_010], 0));
    r.b.set_time(602_000_000_000);
    r.diff(diff(1_048_000_011, 1_048_000_020, Some(48_000_010)), &[]);
    assert_eq!(r.b.stats().id_jumps, 1);
    assert_eq!(r.b.update_id(), 48_000_010);
}

#[test]
fn jumps_in_a_row_mean_the_ids_really_moved_and_force_a_resync() {
    let mut r = Run::new();
    r.snap(100);
    let base = 1_000_000_000;
    for i in 0..JUMPS_BEFORE_RESYNC as u64 {
        r.diff(diff(base + i * 10, base + i * 10 + 9, None), &[]);
    }
    assert!(r.b.wants_snapshot());
    assert_eq!(r.b.stats().lost_by(SyncLoss::IdJump), 1);
    assert_eq!(r.b.unsynced_cause(), Some(SyncLoss::IdJump));
    assert_eq!(r.b.buffered_len(), 1, "the last jumped diff starts the next sync");
}

#[test]
fn a_book_applying_nothing_for_stale_resync_resyncs() {
    let mut b = SyncedBook::new(100, 16, 256);
    let mut noop = |_: Applied, _: &Book| {};
    b.set_time(1_000);
    b.on_snapshot(&snap(1_000), &[l(10, 1)], &[l(20, 1)], &mut noop);
    // Frames keep coming, all older than the book: 4.9 s is tolerated.
    for k in 0..50 {
        b.set_time(2_000 + k * 100_000_000);
        b.on_diff(&diff(500, 600, None), &[], &[], &mut noop);
    }
    assert!(b.is_synced());
    b.set_time(2_000 + 5_000_000_000);
    b.on_diff(&diff(500, 600, None), &[], &[], &mut noop);
    assert!(b.wants_snapshot());
    let s = b.stats();
    assert_eq!((s.lost_by(SyncLoss::Stale), s.unsynced_cause), (1, Some(SyncLoss::Stale)));
    assert_eq!(s.stale, 51);
    // Without times the rule never fires (replays that give none).
    let mut b = SyncedBook::new(100, 16, 256);
    b.on_snapshot(&snap(1_000), &[l(10, 1)], &[l(20, 1)], &mut noop);
    for _ in 0..100 {
        b.on_diff(&diff(500, 600, None), &[], &[], &mut noop);
    }
    assert!(b.is_synced());
}

#[test]
fn a_crossed_snapshot_is_refused_and_counted_as_such_not_as_a_resync() {
    let mut b = SyncedBook::new(100, 16, 256);
    let mut noop = |_: Applied, _: &Book| {};
    b.on_snapshot(&snap(100), &[l(10, 1)], &[l(20, 1)], &mut noop);
    b.set_time(1_000);
    b.invalidate();
    b.set_time(2_000);
    b.on_snapshot(&snap(200), &[l(30, 1)], &[l(20, 1)], &mut noop);
    let s = b.stats();
    assert!(b.wants_snapshot());
    assert_eq!(s.lost_by(SyncLoss::CrossedSnapshot), 1);
    assert_eq!(s.lost_by(SyncLoss::CrossedBook), 0);
    assert_eq!((s.resyncs, s.snapshots, s.crossed), (0, 1, 1));
    assert_eq!(s.unsynced_cause, Some(SyncLoss::CrossedSnapshot));
    assert_eq!(s.unsynced_ns_current, 1_000, "the spell began at the reconnect");
    b.set_time(4_000);
    b.on_snapshot(&snap(300), &[l(10, 1)], &[l(20, 1)], &mut noop);
    let s = b.stats();
    assert_eq!((s.resyncs, s.snapshots), (1, 2));
    assert_eq!((s.unsynced_ns_total, s.unsynced_ns_longest, s.unsynced_ns_current), (3_000, 3_000, 0));
    assert_eq!(s.unsynced_cause, None);
    assert_eq!(s.lost_by(SyncLoss::Reconnect), 1);
}

#[test]
fn unsynced_time_runs_from_losing_sync_to_synced_again() {
    let mut r = Run::new();
    r.b.set_time(10);
    r.snap(100); // the first sync is not a spell
    assert_eq!(r.b.stats().unsynced_ns_total, 0);
    r.b.set_time(1_000);
    r.diff(diff(101, 105, None), &[]);
    r.b.set_time(2_000);
    r.diff(diff(110, 115, None), &[]); // gap
    r.b.set_time(2_500);
    assert_eq!(r.b.stats().unsynced_ns_current, 500);
    r.b.set_time(7_000);
    r.snap(112);
    r.b.set_time(8_000);
    r.diff(diff(120, 125, None), &[]); // gap again
    r.b.set_time(8_100);
    r.snap(125);
    let s = r.b.stats();
    assert_eq!((s.unsynced_ns_total, s.unsynced_ns_longest), (5_100, 5_000));
    assert_eq!((s.gaps, s.lost_by(SyncLoss::Gap), s.resyncs), (2, 2, 2));
    let mut sum = SyncStats::default();
    sum.add(&s);
    sum.add(&s);
    assert_eq!((sum.unsynced_ns_total, sum.unsynced_ns_longest, sum.lost_by(SyncLoss::Gap)), (10_200, 5_000, 4));
}

#[test]
fn loss_causes_have_distinct_names() {
    let names: Vec<&str> = SyncLoss::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "gap",
            "ticker_mismatch",
            "id_jump",
            "stale",
            "crossed_snapshot",
            "crossed_book",
            "reconnect",
            "top20_refresh"
        ]
    );
    assert!(SyncLoss::ALL.iter().enumerate().all(|(i, c)| c.index() == i));
}
