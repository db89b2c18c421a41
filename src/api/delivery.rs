//! The queue of `follow` events waiting for a slow control client: deletions and
//! expiries first (a transcribed message must leave the screen before anything
//! else is drawn), then messages most urgent first, oldest first within a
//! priority. A deletion also takes the deleted messages out of the queue, so a
//! client is never shown a message after it was deleted.

use super::FollowEvent;
use std::collections::BTreeMap;

/// Events waiting at most; beyond this the least urgent newest message is dropped
/// and the client is told to re-read (`lagged`).
pub const MAX_PENDING: usize = 10_000;

/// Rank 0 for deletions, expiries and lag notices; 1..=4 for P1..P4 messages.
type Rank = u8;

/// Follow events waiting to be written, in delivery order.
#[derive(Default)]
pub struct DeliveryQueue {
    queue: BTreeMap<(Rank, u64), FollowEvent>,
    seq: u64,
    /// Messages dropped for room and not yet reported.
    missed: u64,
}

impl DeliveryQueue {
    /// Queues `event`.
    pub fn push(&mut self, event: FollowEvent) {
        let rank = match &event {
            FollowEvent::Message(m) => m.priority.to_wire(),
            FollowEvent::Deleted { ids } | FollowEvent::Expired { ids } => {
                self.queue.retain(|_, e| match e {
                    FollowEvent::Message(m) => !ids.contains(&m.id),
                    _ => true,
                });
                0
            }
            FollowEvent::Lagged { missed } => {
                self.missed += missed;
                return;
            }
        };
        self.seq += 1;
        self.queue.insert((rank, self.seq), event);
        if self.queue.len() > MAX_PENDING {
            self.queue.pop_last();
            self.missed += 1;
        }
    }

    /// The next event to write: a lag notice if anything was missed, else the most
    /// urgent waiting event.
    pub fn pop(&mut self) -> Option<FollowEvent> {
        if self.missed > 0 {
            let missed = std::mem::take(&mut self.missed);
            return Some(FollowEvent::Lagged { missed });
        }
        self.queue.pop_first().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MessageView;
    use crate::gossip::priority::Priority;

    fn msg(id: &str, priority: Priority) -> FollowEvent {
        FollowEvent::Message(MessageView {
            id: id.into(),
            author: "a".into(),
            channel: "triage".into(),
            sent_at: String::new(),
            sent_at_ms: 0,
            ttl_ms: 1,
            expires_at_ms: 1,
            remaining_ms: 1,
            priority,
            hops: 0,
            text: String::new(),
            exercise: false,
            report: None,
            held_by: Vec::new(),
        })
    }

    fn ids(q: &mut DeliveryQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop())
            .map(|e| match e {
                FollowEvent::Message(m) => m.id,
                FollowEvent::Deleted { ids } => format!("deleted {}", ids.join(",")),
                FollowEvent::Expired { ids } => format!("expired {}", ids.join(",")),
                FollowEvent::Lagged { missed } => format!("lagged {missed}"),
            })
            .collect()
    }

    #[test]
    fn deletions_first_then_most_urgent_then_oldest() {
        let mut q = DeliveryQueue::default();
        q.push(msg("a", Priority::P3));
        q.push(msg("b", Priority::P1));
        q.push(msg("c", Priority::P3));
        q.push(FollowEvent::Expired {
            ids: vec!["x".into()],
        });
        q.push(msg("d", Priority::P2));
        assert_eq!(ids(&mut q), ["expired x", "b", "d", "a", "c"]);
    }

    #[test]
    fn a_deletion_withdraws_the_waiting_message() {
        let mut q = DeliveryQueue::default();
        q.push(msg("a", Priority::P3));
        q.push(msg("b", Priority::P3));
        q.push(FollowEvent::Deleted {
            ids: vec!["a".into()],
        });
        assert_eq!(ids(&mut q), ["deleted a", "b"]);
    }

    #[test]
    fn overflow_drops_the_least_urgent_and_says_so() {
        let mut q = DeliveryQueue::default();
        q.push(msg("urgent", Priority::P1));
        for i in 0..MAX_PENDING {
            q.push(msg(&i.to_string(), Priority::P4));
        }
        q.push(FollowEvent::Lagged { missed: 2 });
        let out = ids(&mut q);
        assert_eq!(out[0], "lagged 3");
        assert_eq!(out[1], "urgent");
        assert_eq!(out.len(), MAX_PENDING + 1);
        assert_eq!(out.last().unwrap(), &(MAX_PENDING - 2).to_string());
    }
}
