//! A session's outgoing messages: queued, in flight, and (QoS 2) released.
//!
//! One ordered queue holds them all. The connection sends from the front,
//! keeping at most `window` QoS 1/2 messages unacknowledged. Sent entries
//! always form a prefix of the queue (they are sent in order, and QoS 0
//! entries leave as they are sent), so finding what to send next, or the
//! entry an acknowledgement is for, costs the window, not the queue length.
//!
//! For a persistent session, packet ids are assigned when a message is
//! queued, not when it is sent, so that a message persisted for an offline
//! session keeps the same id across a restart and a QoS 2 retransmission is
//! recognised by the client as a duplicate. Such a queue holds at most
//! 65,534 QoS 1/2 messages. A session that ends with its connection gets
//! ids as messages go out, so only its window limits ids and its queue is
//! bounded by the configured limits alone.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::codec::QoS;
use crate::message::Message;
use crate::settings::QueueFullPolicy;
use crate::store::{OutState, QueuedRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub seq: u64,
    pub record: QueuedRecord,
    /// May have reached the client before (sent on an earlier connection,
    /// or recovered from the store): resend with DUP set.
    pub dup: bool,
}

/// What `push` did with a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued under this sequence number.
    Queued(u64),
    /// Queued, and the oldest waiting message was dropped to make room.
    QueuedDroppingOldest { seq: u64, dropped: Box<Entry> },
    /// Not queued: the queue is full.
    Dropped,
}

/// Packet ids available at once (1..=65535), less one so a free id always
/// exists when one is needed.
const MAX_IDS: usize = u16::MAX as usize - 1;

pub(crate) struct OutQueue {
    /// In sequence order; the first `sent` entries are in flight.
    entries: VecDeque<Entry>,
    sent: usize,
    bytes: usize,
    next_seq: u64,
    next_pkid: u16,
    /// Packet id → sequence number of every queued QoS 1/2 message, so an
    /// acknowledgement finds its entry without scanning the window.
    pkids: HashMap<u16, u64>,
    max_messages: usize,
    max_bytes: usize,
    policy: QueueFullPolicy,
    /// Packet ids are assigned at enqueue (persistent sessions) rather than
    /// when sent.
    ids_at_enqueue: bool,
}

impl OutQueue {
    pub fn new(
        max_messages: usize,
        max_bytes: usize,
        policy: QueueFullPolicy,
        ids_at_enqueue: bool,
    ) -> OutQueue {
        OutQueue {
            entries: VecDeque::new(),
            sent: 0,
            bytes: 0,
            next_seq: 1,
            next_pkid: 1,
            pkids: HashMap::new(),
            // Ids held from enqueue to acknowledgement: the queue can never
            // hold more QoS 1/2 messages than there are ids.
            max_messages: if ids_at_enqueue {
                max_messages.min(MAX_IDS)
            } else {
                max_messages
            },
            max_bytes,
            policy,
            ids_at_enqueue,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Restores an entry read back from the store (in sequence order).
    pub fn restore(&mut self, seq: u64, record: QueuedRecord) {
        if record.pkid != 0 {
            self.pkids.insert(record.pkid, seq);
        }
        self.next_seq = self.next_seq.max(seq + 1);
        self.bytes += record.message.size();
        self.entries.push_back(Entry {
            seq,
            record,
            dup: true,
        });
    }

    /// Queues `message` for delivery at `qos`, within the limits.
    pub fn push(
        &mut self,
        message: Arc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: Vec<u32>,
    ) -> Pushed {
        let size = message.size();
        let mut dropped = None;
        if self.is_full(size) {
            if qos == QoS::AtMostOnce || self.policy == QueueFullPolicy::DropNew {
                return Pushed::Dropped;
            }
            match self.take_oldest_unsent() {
                Some(old) if !self.is_full(size) => dropped = Some(old),
                Some(old) => {
                    // One eviction was not enough room (a much larger
                    // message): keep the old one, refuse the new one.
                    self.reinsert(old);
                    return Pushed::Dropped;
                }
                None => return Pushed::Dropped,
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let pkid = if qos == QoS::AtMostOnce || !self.ids_at_enqueue {
            0
        } else {
            self.alloc_pkid(seq)
        };
        self.bytes += size;
        self.entries.push_back(Entry {
            seq,
            record: QueuedRecord {
                message,
                qos,
                pkid,
                retain,
                subscription_ids,
                state: OutState::Publish,
            },
            dup: false,
        });
        match dropped {
            Some(dropped) => Pushed::QueuedDroppingOldest {
                seq,
                dropped: Box::new(dropped),
            },
            None => Pushed::Queued(seq),
        }
    }

    fn is_full(&self, size: usize) -> bool {
        self.entries.len() >= self.max_messages
            || (self.bytes + size > self.max_bytes && !self.entries.is_empty())
    }

    fn take_oldest_unsent(&mut self) -> Option<Entry> {
        let entry = self.entries.remove(self.sent)?;
        self.forget(&entry);
        Some(entry)
    }

    fn reinsert(&mut self, entry: Entry) {
        if entry.record.pkid != 0 {
            self.pkids.insert(entry.record.pkid, entry.seq);
        }
        self.bytes += entry.record.message.size();
        let pos = self.entries.partition_point(|e| e.seq < entry.seq);
        self.entries.insert(pos, entry);
    }

    fn alloc_pkid(&mut self, seq: u64) -> u16 {
        // Fewer than 65535 ids are ever held (the queue's cap when ids are
        // assigned at enqueue, the window otherwise), so a free one exists
        // and this loop ends.
        loop {
            let id = self.next_pkid;
            self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
            if let std::collections::hash_map::Entry::Vacant(slot) = self.pkids.entry(id) {
                slot.insert(seq);
                return id;
            }
        }
    }

    fn forget(&mut self, entry: &Entry) {
        self.bytes = self.bytes.saturating_sub(entry.record.message.size());
        if entry.record.pkid != 0 {
            self.pkids.remove(&entry.record.pkid);
        }
    }

    /// A new connection serves the session: everything unacknowledged is
    /// sent again, with DUP set where it may have been sent before.
    pub fn reset_for_reconnect(&mut self) {
        for e in self.entries.iter_mut().take(self.sent) {
            e.dup = true;
        }
        self.sent = 0;
    }

    /// Moves the next entries to send into `out`, keeping at most `window`
    /// QoS 1/2 messages in flight. QoS 1/2 entries stay queued until
    /// acknowledged (`out` gets clones: the message is an `Arc`); QoS 0
    /// entries leave the queue.
    pub fn next_to_send(&mut self, window: usize, out: &mut Vec<Entry>) {
        // Ids in flight must leave one free (see `alloc_pkid`).
        let window = window.min(MAX_IDS);
        while let Some(e) = self.entries.get(self.sent) {
            if e.record.qos == QoS::AtMostOnce {
                if let Some(e) = self.entries.remove(self.sent) {
                    self.forget(&e);
                    out.push(e);
                }
            } else if self.sent < window {
                let (seq, needs_id) = (e.seq, e.record.pkid == 0);
                if needs_id {
                    let id = self.alloc_pkid(seq);
                    if let Some(e) = self.entries.get_mut(self.sent) {
                        e.record.pkid = id;
                    }
                }
                if let Some(e) = self.entries.get(self.sent) {
                    out.push(e.clone());
                }
                self.sent += 1;
            } else {
                break;
            }
        }
    }

    /// Where the in-flight entry with `pkid` is, if it is in flight.
    fn position_in_flight(&self, pkid: u16) -> Option<usize> {
        let seq = *self.pkids.get(&pkid)?;
        let pos = self.entries.partition_point(|e| e.seq < seq);
        (pos < self.sent && self.entries.get(pos)?.seq == seq).then_some(pos)
    }

    fn remove_at(&mut self, pos: usize) -> Option<Entry> {
        let entry = self.entries.remove(pos)?;
        if pos < self.sent {
            self.sent -= 1;
        }
        self.forget(&entry);
        Some(entry)
    }

    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let pos = self.entries.partition_point(|e| e.seq < seq);
        self.entries.get(pos).filter(|e| e.seq == seq)
    }

    /// Removes the entry `seq` (expired or too large to send); returns it.
    pub fn remove_seq(&mut self, seq: u64) -> Option<Entry> {
        let pos = self.entries.partition_point(|e| e.seq < seq);
        if self.entries.get(pos).is_some_and(|e| e.seq == seq) {
            self.remove_at(pos)
        } else {
            None
        }
    }

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2, released): the message is done.
    /// Returns its sequence number if `pkid` was in flight in that state.
    pub fn complete(&mut self, pkid: u16, qos: QoS) -> Option<u64> {
        let pos = self.position_in_flight(pkid)?;
        let r = &self.entries.get(pos)?.record;
        let done = r.qos == qos && (qos == QoS::AtLeastOnce || r.state == OutState::Released);
        if !done {
            return None;
        }
        self.remove_at(pos).map(|e| e.seq)
    }

    /// PUBREC: a QoS 2 message reached the client; from now on only PUBREL
    /// is sent for it. Returns the updated record for the store.
    pub fn release(&mut self, pkid: u16) -> Option<(u64, QueuedRecord)> {
        let pos = self.position_in_flight(pkid)?;
        let e = self.entries.get_mut(pos)?;
        if e.record.qos != QoS::ExactlyOnce || e.record.state != OutState::Publish {
            return None;
        }
        e.record.state = OutState::Released;
        Some((e.seq, e.record.clone()))
    }

    /// Whether a PUBREL for `pkid` is expected (the message is released).
    pub fn is_released(&self, pkid: u16) -> bool {
        self.position_in_flight(pkid)
            .and_then(|pos| self.entries.get(pos))
            .is_some_and(|e| e.record.state == OutState::Released)
    }

    /// Drops everything (clean start, session end).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.pkids.clear();
        self.bytes = 0;
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message {
            topic: "t".into(),
            payload: bytes::Bytes::from_static(payload),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: Default::default(),
            expires_at_ms: None,
            publisher: "".into(),
        })
    }

    #[test]
    fn window_limits_inflight_and_qos0_leaves_at_once() {
        let mut q = OutQueue::new(100, 1 << 20, QueueFullPolicy::DropNew, true);
        for _ in 0..3 {
            q.push(msg(b"a"), QoS::AtLeastOnce, false, vec![]);
        }
        q.push(msg(b"b"), QoS::AtMostOnce, false, vec![]);
        let mut out = Vec::new();
        q.next_to_send(2, &mut out);
        assert_eq!(out.len(), 2);
        out.clear();
        q.next_to_send(2, &mut out);
        assert!(out.is_empty(), "window full");
        let first = q.complete(1, QoS::AtLeastOnce);
        assert_eq!(first, Some(1));
        q.next_to_send(2, &mut out);
        // The third QoS 1 and then the QoS 0 behind it.
        assert_eq!(out.len(), 2);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn full_queue_drops_new_or_oldest() {
        let mut q = OutQueue::new(2, 1 << 20, QueueFullPolicy::DropNew, true);
        q.push(msg(b"1"), QoS::AtLeastOnce, false, vec![]);
        q.push(msg(b"2"), QoS::AtLeastOnce, false, vec![]);
        assert_eq!(
            q.push(msg(b"3"), QoS::AtLeastOnce, false, vec![]),
            Pushed::Dropped
        );

        let mut q = OutQueue::new(2, 1 << 20, QueueFullPolicy::DropOldest, true);
        q.push(msg(b"1"), QoS::AtLeastOnce, false, vec![]);
        q.push(msg(b"2"), QoS::AtLeastOnce, false, vec![]);
        match q.push(msg(b"3"), QoS::AtLeastOnce, false, vec![]) {
            Pushed::QueuedDroppingOldest { seq, dropped } => {
                assert_eq!(seq, 3);
                assert_eq!(&dropped.record.message.payload[..], b"1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            q.push(msg(b"4"), QoS::AtMostOnce, false, vec![]),
            Pushed::Dropped
        );
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn qos2_release_then_complete_and_reconnect_sets_dup() {
        let mut q = OutQueue::new(10, 1 << 20, QueueFullPolicy::DropNew, true);
        q.push(msg(b"x"), QoS::ExactlyOnce, false, vec![]);
        q.push(msg(b"y"), QoS::ExactlyOnce, false, vec![]);
        let mut out = Vec::new();
        q.next_to_send(10, &mut out);
        assert!(out.iter().all(|e| !e.dup));
        assert_eq!(q.complete(1, QoS::ExactlyOnce), None, "not released yet");
        assert!(q.release(1).is_some());
        assert!(q.is_released(1));
        q.reset_for_reconnect();
        out.clear();
        q.next_to_send(10, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|e| e.dup));
        assert_eq!(out[0].record.state, OutState::Released);
        assert_eq!(q.complete(1, QoS::ExactlyOnce), Some(1));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn pkids_are_unique_and_reused_after_ack() {
        let mut q = OutQueue::new(10, 1 << 20, QueueFullPolicy::DropNew, true);
        q.next_pkid = u16::MAX;
        q.push(msg(b"a"), QoS::AtLeastOnce, false, vec![]);
        q.push(msg(b"b"), QoS::AtLeastOnce, false, vec![]);
        let mut out = Vec::new();
        q.next_to_send(10, &mut out);
        assert_eq!(out[0].record.pkid, u16::MAX);
        assert_eq!(out[1].record.pkid, 1, "wraps past 0");
    }

    #[test]
    fn byte_limit() {
        let mut q = OutQueue::new(100, 70, QueueFullPolicy::DropNew, true);
        assert!(matches!(
            q.push(msg(b"a"), QoS::AtLeastOnce, false, vec![]),
            Pushed::Queued(_)
        ));
        assert_eq!(
            q.push(msg(b"b"), QoS::AtLeastOnce, false, vec![]),
            Pushed::Dropped
        );
        assert!(q.bytes() <= 70);
    }

    #[test]
    fn without_ids_at_enqueue_the_queue_is_not_capped_by_packet_ids() {
        let mut q = OutQueue::new(100_000, usize::MAX, QueueFullPolicy::DropNew, false);
        for _ in 0..70_000 {
            assert!(matches!(
                q.push(msg(b"m"), QoS::AtLeastOnce, false, vec![]),
                Pushed::Queued(_)
            ));
        }
        let mut out = Vec::new();
        q.next_to_send(3, &mut out);
        let ids: Vec<u16> = out.iter().map(|e| e.record.pkid).collect();
        assert_eq!(ids, vec![1, 2, 3], "ids assigned as messages go out");
        assert_eq!(q.complete(2, QoS::AtLeastOnce), Some(2));
        out.clear();
        q.next_to_send(3, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].record.pkid, 4);
        assert_eq!(q.len(), 70_000 - 1);
    }
}
