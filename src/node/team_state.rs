//! The team a node runs in (`fieldmesh up --team NAME`): its keys, what it knows of
//! the membership, and the rules the node applies with them (`proto/team.md`):
//! channel bodies are sealed with the team key, authors must be admitted, and the
//! reserved `team` channel carries rosters, join certificates and key updates.
//! Pure: the event loop feeds it records and asks it questions.

use crate::crypto::dm::seed_of;
use crate::gossip::TeamTag;
use crate::identity::TeamEntry;
use crate::team::{
    decrypt_body, encrypt_body, record_kind, JoinCert, KeyUpdate, Membership, OrderKind,
    RecordKind, Roster, SignedOrder, SignedRoster, TeamError, TeamId, TeamKey,
};
use libp2p::identity::ed25519;

/// The reserved channel of team records (rosters, join certificates, key updates).
pub const TEAM_CHANNEL: &str = "team";
/// Channels whose bodies are not sealed with the team key: DMs are sealed to their
/// recipient; team records and tombstones (a message id) are signed and readable
/// by relays.
fn is_plain_channel(channel: &str) -> bool {
    channel == TEAM_CHANNEL
        || channel == crate::gossip::direct::DM_CHANNEL
        || channel == crate::gossip::tombstone::TOMBSTONE_CHANNEL
        || channel == crate::gossip::receipt::RECEIPT_CHANNEL
}

/// A team the node is running in.
pub struct ActiveTeam {
    id: TeamId,
    name: String,
    admin: [u8; 32],
    me: ed25519::Keypair,
    keys: Vec<TeamKey>,
    membership: Option<Membership>,
    /// Verified certificates kept until the first roster arrives.
    early_certs: Vec<JoinCert>,
    join_cert: Vec<u8>,
    /// Set when the admin revoked this device: `Some(wipe)`.
    revoked_me: Option<bool>,
    /// The newest stand-down order: (issued, stand-down time), Unix ms.
    stand_down: Option<(u64, u64)>,
}

/// What applying a team record changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Nothing new (a replay, or a key update not addressed to us).
    Nothing,
    /// Membership or keys changed.
    Changed,
}

impl ActiveTeam {
    /// The team of a vault entry, as seen by `me`.
    pub fn new(entry: &TeamEntry, me: ed25519::Keypair) -> ActiveTeam {
        ActiveTeam {
            id: TeamId(entry.id),
            name: entry.name.clone(),
            admin: entry.admin,
            me,
            keys: vec![TeamKey {
                epoch: entry.epoch,
                key: entry.key,
            }],
            membership: None,
            early_certs: Vec::new(),
            join_cert: entry.join_cert.clone(),
            revoked_me: None,
            stand_down: None,
        }
    }

    /// The tag used in topics: the team id in hex.
    pub fn tag(&self) -> TeamTag {
        TeamTag::new(&self.id.to_string()).expect("invariant: hex team id is a valid tag")
    }

    /// Whether this node is the team's admin.
    pub fn is_admin(&self) -> bool {
        self.me.public().to_bytes() == self.admin
    }

    /// The admission rule: the admin, this node, a roster member or holder of a
    /// verified join certificate — and not removed.
    pub fn admits(&self, author: &[u8; 32]) -> bool {
        if let Some(m) = &self.membership {
            return m.admits(author) || *author == self.admin;
        }
        *author == self.admin
            || *author == self.me.public().to_bytes()
            || self.early_certs.iter().any(|c| c.member == *author)
    }

    /// Whether this is an exercise team: every message it carries is marked.
    pub fn is_exercise(&self) -> bool {
        crate::team::is_exercise_name(&self.name)
    }

    /// Whether a member's message keeps the team's mode: marked EXERCISE in an
    /// exercise team, unmarked in a live one. A body this node cannot open (a key
    /// it never had) is not judged.
    pub fn keeps_mode(&self, channel: &str, author: &[u8; 32], body: &[u8]) -> bool {
        self.open(channel, author, body).is_none_or(|plain| {
            crate::gossip::report::split_exercise(&plain).0 == self.is_exercise()
        })
    }

    /// Every member this node knows of (see [`Membership::members`]); before the
    /// first roster: the admin, this node and the early certificates' members.
    pub fn members(&self) -> Vec<[u8; 32]> {
        let mut all = match &self.membership {
            Some(m) => m.members(),
            None => std::iter::once(self.me.public().to_bytes())
                .chain(self.early_certs.iter().map(|c| c.member))
                .collect(),
        };
        all.push(self.admin);
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Seals a channel body with the newest team key (team and DM channels pass).
    pub fn seal(&self, channel: &str, plaintext: Vec<u8>) -> Result<Vec<u8>, TeamError> {
        if is_plain_channel(channel) {
            return Ok(plaintext);
        }
        let key = self
            .keys
            .iter()
            .max_by_key(|k| k.epoch)
            .expect("invariant: a team has at least one key");
        encrypt_body(
            key,
            &self.id,
            channel,
            &self.me.public().to_bytes(),
            &plaintext,
        )
    }

    /// Opens a channel body; `None` if no key we hold opens it (sent after we were
    /// removed, or not a team body).
    pub fn open(&self, channel: &str, author: &[u8; 32], body: &[u8]) -> Option<Vec<u8>> {
        if is_plain_channel(channel) {
            return Some(body.to_vec());
        }
        decrypt_body(&self.keys, &self.id, channel, author, body).ok()
    }

    /// Applies a record from the `team` channel, written by `author`.
    pub fn apply(&mut self, author: &[u8; 32], body: &[u8]) -> Result<Applied, TeamError> {
        match record_kind(body) {
            Some(RecordKind::Roster) => {
                let roster = SignedRoster::decode(body)?;
                if roster.roster.team != self.id {
                    return Err(TeamError::WrongTeam);
                }
                let changed = match &mut self.membership {
                    Some(m) => m.update_roster(roster)?,
                    None => {
                        let mut m = Membership::new(roster, &self.admin)?;
                        for cert in std::mem::take(&mut self.early_certs) {
                            if let Some(key) = self.key_of(cert.invite_epoch) {
                                // A certificate the roster made stale is simply dropped.
                                let _ = m.add_cert(cert, &key);
                            }
                        }
                        self.membership = Some(m);
                        true
                    }
                };
                Ok(if changed {
                    Applied::Changed
                } else {
                    Applied::Nothing
                })
            }
            Some(RecordKind::JoinCert) => {
                let cert = JoinCert::decode(body)?;
                if cert.member != *author || cert.team != self.id {
                    return Err(TeamError::WrongTeam);
                }
                let key = self
                    .key_of(cert.invite_epoch)
                    .ok_or(TeamError::UnknownEpoch {
                        epoch: cert.invite_epoch,
                    })?;
                match &mut self.membership {
                    Some(m) => Ok(if m.add_cert(cert, &key)? {
                        Applied::Changed
                    } else {
                        Applied::Nothing
                    }),
                    None => {
                        cert.verify(&self.name, &self.admin, &key)?;
                        if self.early_certs.iter().any(|c| c.member == cert.member) {
                            return Ok(Applied::Nothing);
                        }
                        self.early_certs.push(cert);
                        Ok(Applied::Changed)
                    }
                }
            }
            Some(RecordKind::KeyUpdate) => {
                let update = KeyUpdate::decode(body)?;
                if update.team != self.id {
                    return Err(TeamError::WrongTeam);
                }
                let me = self.me.public().to_bytes();
                match update.open_for(&seed_of(&self.me), &me, &self.admin) {
                    Ok(key) if self.key_of(key.epoch).is_none() => {
                        self.keys.push(key);
                        Ok(Applied::Changed)
                    }
                    Ok(_) => Ok(Applied::Nothing),
                    // Valid, but not for us: we were removed (or joined later).
                    Err(TeamError::NotForMe) => Ok(Applied::Nothing),
                    Err(e) => Err(e),
                }
            }
            Some(RecordKind::Order) => {
                let signed = SignedOrder::decode(body)?;
                if signed.order.team != self.id {
                    return Err(TeamError::WrongTeam);
                }
                signed.verify(&self.admin)?;
                let order = signed.order;
                match order.kind {
                    OrderKind::Revoke { member, wipe } => {
                        if member != self.me.public().to_bytes() || self.revoked_me >= Some(wipe) {
                            return Ok(Applied::Nothing);
                        }
                        self.revoked_me = Some(wipe);
                    }
                    OrderKind::StandDown { at_ms } => {
                        if self
                            .stand_down
                            .is_some_and(|(issued, _)| issued >= order.issued_at_ms)
                        {
                            return Ok(Applied::Nothing);
                        }
                        self.stand_down = Some((order.issued_at_ms, at_ms));
                    }
                }
                Ok(Applied::Changed)
            }
            Some(RecordKind::Invite) | None => Err(TeamError::Malformed),
        }
    }

    /// `Some(wipe)` once the admin revoked this device (a record signed by the
    /// admin naming this node); `wipe`: delete the team's data and keys.
    pub fn revoked(&self) -> Option<bool> {
        self.revoked_me
    }

    /// Admin only: removes a lost device like [`Self::remove`] (new roster, key
    /// rotation) and adds a signed revocation; with `wipe`, the device deletes the
    /// team's data and keys if it receives it.
    pub fn revoke(
        &mut self,
        member: [u8; 32],
        wipe: bool,
        now_ms: u64,
    ) -> Result<Vec<Vec<u8>>, TeamError> {
        let mut records = self.remove(member, now_ms)?;
        records.push(self.order(OrderKind::Revoke { member, wipe }, now_ms)?);
        Ok(records)
    }

    /// When the team stands down (Unix ms), by the newest order from the admin.
    pub fn stand_down_at(&self) -> Option<u64> {
        self.stand_down.map(|(_, at)| at)
    }

    /// Admin only: an order signed now (the caller publishes and applies it).
    pub fn order(&self, kind: OrderKind, now_ms: u64) -> Result<Vec<u8>, TeamError> {
        if !self.is_admin() {
            return Err(TeamError::NotAdmin);
        }
        let order = crate::team::Order {
            team: self.id,
            issued_at_ms: now_ms,
            kind,
        };
        Ok(SignedOrder::sign(order, &self.me).encode())
    }

    fn key_of(&self, epoch: u32) -> Option<[u8; 32]> {
        self.keys.iter().find(|k| k.epoch == epoch).map(|k| k.key)
    }

    /// Records this node publishes when it starts: the admin's first roster if no
    /// roster is known yet, a joiner's certificate.
    pub fn startup_records(&self, now_ms: u64) -> Result<Vec<Vec<u8>>, TeamError> {
        let mut out = Vec::new();
        if self.is_admin() && self.membership.is_none() {
            let roster = Roster {
                team: self.id,
                name: self.name.clone(),
                admin: self.admin,
                epoch: self.keys.iter().map(|k| k.epoch).max().unwrap_or(0),
                members: vec![self.admin],
                removed: Vec::new(),
                issued_at_ms: now_ms,
            };
            out.push(SignedRoster::sign(roster, &self.me)?.encode());
        }
        if !self.join_cert.is_empty() {
            out.push(self.join_cert.clone());
        }
        Ok(out)
    }

    /// Whether `which` names this team (by name or id).
    pub fn is_named(&self, which: &str) -> bool {
        crate::team::name_matches(&self.name, which) || self.id.to_string() == which
    }

    /// Admin only: an invite with the newest key (so it survives rotations).
    pub fn invite(&self, expires_at_ms: u64) -> Result<crate::team::Invite, TeamError> {
        if !self.is_admin() {
            return Err(TeamError::NotAdmin);
        }
        let key = self
            .keys
            .iter()
            .max_by_key(|k| k.epoch)
            .expect("invariant: a team has at least one key");
        crate::team::Invite::issue(&self.me, self.id, &self.name, key, expires_at_ms)
    }

    /// Admin only: removes `member`, rotates the key. Returns the new roster and key
    /// update to publish on the `team` channel; the new key is ours at once.
    pub fn remove(&mut self, member: [u8; 32], now_ms: u64) -> Result<Vec<Vec<u8>>, TeamError> {
        if !self.is_admin() {
            return Err(TeamError::NotAdmin);
        }
        let (mut members, mut removed, epoch) = match &self.membership {
            Some(m) => {
                let r = &m.roster().roster;
                let mut members = r.members.clone();
                members.extend(m.certs().iter().map(|c| c.member));
                (members, r.removed.clone(), r.epoch)
            }
            None => {
                let mut members = vec![self.admin];
                members.extend(self.early_certs.iter().map(|c| c.member));
                (members, Vec::new(), 0)
            }
        };
        members.sort();
        members.dedup();
        members.retain(|m| *m != member);
        if !removed.contains(&member) {
            removed.push(member);
        }
        let next = self
            .keys
            .iter()
            .map(|k| k.epoch)
            .max()
            .unwrap_or(epoch)
            .max(epoch)
            + 1;
        let key = TeamKey::random(next);
        let roster = SignedRoster::sign(
            Roster {
                team: self.id,
                name: self.name.clone(),
                admin: self.admin,
                epoch: next,
                members: members.clone(),
                removed,
                issued_at_ms: now_ms,
            },
            &self.me,
        )?;
        let update = KeyUpdate::new(&self.me, self.id, &key, &members)?;
        let records = vec![roster.encode(), update.encode()];
        self.keys.push(key);
        for r in &records {
            self.apply(&self.admin.clone(), r)?;
        }
        Ok(records)
    }
}

/// Audit facts for a membership change: `member_added` for each key in `after`
/// but not `before`, `member_removed` for the reverse (`proto/audit.md` §3).
pub(crate) fn membership_changes(
    before: &[[u8; 32]],
    after: &[[u8; 32]],
) -> Vec<crate::audit::Fact> {
    use crate::audit::{peer_of, Event, Fact};
    let fact = |event, key: &[u8; 32]| Fact {
        peer: peer_of(key),
        ..Fact::new(event)
    };
    let added = after.iter().filter(|k| !before.contains(k));
    let removed = before.iter().filter(|k| !after.contains(k));
    added
        .map(|k| fact(Event::MemberAdded, k))
        .chain(removed.map(|k| fact(Event::MemberRemoved, k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::Invite;

    fn admin_team() -> (ActiveTeam, ed25519::Keypair, TeamEntry) {
        let admin = ed25519::Keypair::generate();
        let key = TeamKey::random(0);
        let entry = TeamEntry {
            id: TeamId::random().0,
            name: "ops".into(),
            admin: admin.public().to_bytes(),
            epoch: 0,
            key: key.key,
            join_cert: Vec::new(),
        };
        (ActiveTeam::new(&entry, admin.clone()), admin, entry)
    }

    fn joiner(entry: &TeamEntry, admin: &ed25519::Keypair) -> (ActiveTeam, ed25519::Keypair) {
        let me = ed25519::Keypair::generate();
        let key = TeamKey {
            epoch: entry.epoch,
            key: entry.key,
        };
        let invite = Invite::issue(admin, TeamId(entry.id), &entry.name, &key, u64::MAX).unwrap();
        let cert = invite.join_cert(&me, 1).encode();
        let mut e = entry.clone();
        e.join_cert = cert;
        (ActiveTeam::new(&e, me.clone()), me)
    }

    #[test]
    fn exercise_and_live_messages_never_mix() {
        use crate::gossip::report::mark_exercise;
        let (live, admin, mut entry) = admin_team();
        entry.name = format!("{}ops", crate::team::EXERCISE_PREFIX);
        let exercise = ActiveTeam::new(&entry, admin.clone());
        assert!(exercise.is_exercise() && !live.is_exercise());
        assert!(exercise.is_named("ops") && exercise.is_named("EXERCISE ops"));
        let me = admin.public().to_bytes();
        let marked = exercise
            .seal("triage", mark_exercise(b"bay 4".to_vec()))
            .unwrap();
        let unmarked = exercise.seal("triage", b"bay 4".to_vec()).unwrap();
        assert!(exercise.keeps_mode("triage", &me, &marked));
        assert!(!exercise.keeps_mode("triage", &me, &unmarked));
        // The live team (same key, same id) refuses the marked body.
        assert!(live.keeps_mode("triage", &me, &unmarked));
        assert!(!live.keeps_mode("triage", &me, &marked));
        // A body it cannot open is not judged.
        assert!(exercise.keeps_mode("triage", &me, b"not sealed"));
    }

    #[test]
    fn only_the_admin_orders_and_the_newest_stand_down_wins() {
        let (a, admin, entry) = admin_team();
        let (mut b, b_key) = joiner(&entry, &admin);
        assert_eq!(
            b.order(OrderKind::StandDown { at_ms: 1 }, 1),
            Err(TeamError::NotAdmin)
        );
        let admin_key = admin.public().to_bytes();
        let early = a.order(OrderKind::StandDown { at_ms: 500 }, 10).unwrap();
        let late = a.order(OrderKind::StandDown { at_ms: 900 }, 20).unwrap();
        assert_eq!(b.apply(&admin_key, &late).unwrap(), Applied::Changed);
        assert_eq!(b.apply(&admin_key, &early).unwrap(), Applied::Nothing);
        assert_eq!(b.stand_down_at(), Some(900));
        // A revocation of another device changes nothing here; of this one, it does.
        let other = a
            .order(
                OrderKind::Revoke {
                    member: [7; 32],
                    wipe: true,
                },
                30,
            )
            .unwrap();
        assert_eq!(b.apply(&admin_key, &other).unwrap(), Applied::Nothing);
        assert_eq!(b.revoked(), None);
        let me = a
            .order(
                OrderKind::Revoke {
                    member: b_key.public().to_bytes(),
                    wipe: true,
                },
                40,
            )
            .unwrap();
        assert_eq!(b.apply(&admin_key, &me).unwrap(), Applied::Changed);
        assert_eq!(b.revoked(), Some(true));
    }

    #[test]
    fn members_read_each_other_and_outsiders_are_not_admitted() {
        let (mut a, _admin, entry) = admin_team();
        let (mut b, b_key) = joiner(&entry, &_admin);
        let roster = a.startup_records(10).unwrap();
        let cert = b.startup_records(10).unwrap();
        for r in &roster {
            assert_eq!(a.apply(&a.admin.clone(), r).unwrap(), Applied::Changed);
            assert_eq!(b.apply(&a.admin, r).unwrap(), Applied::Changed);
        }
        assert_eq!(
            a.apply(&b_key.public().to_bytes(), &cert[0]).unwrap(),
            Applied::Changed
        );
        let sealed = b.seal("triage", b"bay 4".to_vec()).unwrap();
        assert_eq!(
            a.open("triage", &b_key.public().to_bytes(), &sealed)
                .unwrap(),
            b"bay 4"
        );
        assert!(a.admits(&b_key.public().to_bytes()));
        let outsider = ed25519::Keypair::generate().public().to_bytes();
        assert!(!a.admits(&outsider) && !b.admits(&outsider));
        // A certificate replayed by another author is refused.
        assert!(a.apply(&outsider, &cert[0]).is_err());
    }

    #[test]
    fn a_removed_member_cannot_read_what_is_sent_after() {
        let (mut a, admin, entry) = admin_team();
        let (mut b, b_key) = joiner(&entry, &admin);
        let (mut c, c_key) = joiner(&entry, &admin);
        for r in a.startup_records(10).unwrap() {
            a.apply(&a.admin.clone(), &r).unwrap();
            b.apply(&a.admin, &r).unwrap();
            c.apply(&a.admin, &r).unwrap();
        }
        for (t, k) in [(&b, &b_key), (&c, &c_key)] {
            let cert = t.startup_records(10).unwrap().remove(0);
            a.apply(&k.public().to_bytes(), &cert).unwrap();
        }
        let records = a.remove(c_key.public().to_bytes(), 20).unwrap();
        for r in &records {
            b.apply(&a.admin, r).unwrap();
            c.apply(&a.admin, r).unwrap();
        }
        let after = a.seal("triage", b"after removal".to_vec()).unwrap();
        assert_eq!(
            b.open("triage", &a.admin, &after).unwrap(),
            b"after removal"
        );
        assert_eq!(c.open("triage", &a.admin, &after), None);
        assert!(!a.admits(&c_key.public().to_bytes()) && !b.admits(&c_key.public().to_bytes()));
        assert!(a.admits(&b_key.public().to_bytes()));
        assert!(b.remove(a.admin, 30).is_err(), "only the admin removes");
    }
}
