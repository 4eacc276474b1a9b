//! Who belongs to a shared wallet, and with which rights: opening a wallet, invitations,
//! joining, changing rights, leaving, and who may receive a share when it closes.
//!
//! Each change is decided here on facts the store reads (the wallet's current members,
//! the member's household and default wallet, the invitation), and the store writes the
//! decision: a seat to write and what becomes of the member's default wallet. A wallet
//! or a member that does not exist is a fact the store reports itself (`404`).

use super::{Rights, WalletKind, conflict};
use crate::DomainError;
use crate::ids::{MemberId, WalletId};
use jiff::Timestamp;

/// A member's role in a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A household's owner: invites, splits the points when it closes, never leaves.
    Owner,
    /// A household's member, who joined with an invitation code.
    Member,
    /// A business's contact person.
    Contact,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
            Role::Contact => "contact",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            "contact" => Some(Role::Contact),
            _ => None,
        }
    }
}

/// A current member of a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub member_id: MemberId,
    pub role: Role,
    pub rights: Rights,
}

/// A wallet as a change to its members reads it: its kind, whether it has closed, and
/// who belongs to it now (not those who left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub id: WalletId,
    pub kind: WalletKind,
    pub closed: bool,
    pub seats: Vec<Seat>,
}

impl Roster {
    /// The member's seat, if they belong to the wallet now.
    pub fn seat(&self, member: &MemberId) -> Option<&Seat> {
        self.seats.iter().find(|s| &s.member_id == member)
    }

    /// A closed wallet takes no change (`409 wallet_closed`).
    pub fn must_be_open(&self) -> Result<(), DomainError> {
        match self.closed {
            true => Err(conflict("wallet_closed", "the wallet is closed")),
            false => Ok(()),
        }
    }
}

/// A member as a change to a wallet reads them: the household they belong to now and
/// their default wallet at the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub member_id: MemberId,
    pub household: Option<WalletId>,
    pub default_wallet: Option<WalletId>,
}

/// A household's invitation, as found by the hash of the code typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub wallet_id: WalletId,
    pub used: bool,
    pub expires_at: Timestamp,
}

/// What becomes of a member's default wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultChange {
    Keep,
    /// This wallet becomes the member's default.
    Set,
    /// The member has no default any more (it was this wallet).
    Clear,
}

/// A seat to write: a member joining (or coming back), or their rights changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatChange {
    pub seat: Seat,
    pub default: DefaultChange,
    /// A household's invitation this join uses up.
    pub uses_invite: bool,
}

/// Opening a wallet: a household with its owner (who must not be in another household),
/// a business without one. The owner's seat is what the store writes with the wallet.
pub fn decide_open(
    wallet_id: &WalletId,
    kind: WalletKind,
    owner: Option<&Candidate>,
    owner_rights: Rights,
) -> Result<Option<SeatChange>, DomainError> {
    match (kind, owner) {
        (WalletKind::Household, None) => Err(DomainError::invalid("owner_id", "a household needs its owner")),
        (WalletKind::Business, Some(_)) => Err(DomainError::invalid(
            "owner_id",
            "a business has contacts, not an owner: add them as members",
        )),
        (WalletKind::Business, None) => Ok(None),
        (WalletKind::Household, Some(owner)) => {
            let roster = Roster {
                id: wallet_id.clone(),
                kind,
                closed: false,
                seats: Vec::new(),
            };
            seat_for(&roster, owner, Role::Owner, owner_rights, false).map(Some)
        }
    }
}

/// Invitation codes are a household's (a business's contacts are added directly), and
/// only while it is open.
pub fn decide_invite(roster: &Roster) -> Result<(), DomainError> {
    roster.must_be_open()?;
    match roster.kind {
        WalletKind::Household => Ok(()),
        WalletKind::Business => Err(conflict(
            "not_a_household",
            "invitation codes are for households; add a business's contacts directly",
        )),
    }
}

/// A member joining an open wallet: a household's with a valid invitation of that
/// household (unused, not expired at `now`), a business's as a contact. The wallet
/// becomes their default when asked, or when they earn into it and have none yet.
pub fn decide_join(
    roster: &Roster,
    member: &Candidate,
    invite: Option<&Invite>,
    rights: Rights,
    make_default: bool,
    now: Timestamp,
) -> Result<SeatChange, DomainError> {
    roster.must_be_open()?;
    let role = match roster.kind {
        WalletKind::Household => {
            let valid = invite.is_some_and(|i| i.wallet_id == roster.id && !i.used && i.expires_at > now);
            if !valid {
                return Err(DomainError::invalid(
                    "code",
                    "joining a household needs a valid invitation code of that household, unused and not expired",
                ));
            }
            Role::Member
        }
        WalletKind::Business => Role::Contact,
    };
    let mut change = seat_for(roster, member, role, rights, make_default)?;
    change.uses_invite = roster.kind == WalletKind::Household;
    Ok(change)
}

/// The seat of a member joining, after the checks every join shares: not in the wallet
/// already, and (for a household) in no other household.
fn seat_for(
    roster: &Roster,
    member: &Candidate,
    role: Role,
    rights: Rights,
    make_default: bool,
) -> Result<SeatChange, DomainError> {
    if roster.seat(&member.member_id).is_some() {
        return Err(conflict(
            "already_in_wallet",
            "the member already belongs to this wallet",
        ));
    }
    if roster.kind == WalletKind::Household
        && let Some(other) = &member.household
        && other != &roster.id
    {
        return Err(conflict(
            "household_taken",
            format!("the member already belongs to household {other}; a member belongs to one household at most"),
        ));
    }
    let default = match (make_default, rights.earn_into && member.default_wallet.is_none()) {
        (true, _) | (false, true) => DefaultChange::Set,
        (false, false) => DefaultChange::Keep,
    };
    Ok(SeatChange {
        seat: Seat {
            member_id: member.member_id.clone(),
            role,
            rights,
        },
        default,
        uses_invite: false,
    })
}

/// New rights for a current member (`seat`, as the store found it), and whether the
/// wallet is to be their default (`None`: as it is).
pub fn decide_rights(
    roster: &Roster,
    seat: &Seat,
    member: &Candidate,
    rights: Rights,
    make_default: Option<bool>,
) -> Result<SeatChange, DomainError> {
    roster.must_be_open()?;
    Ok(SeatChange {
        seat: Seat { rights, ..seat.clone() },
        default: match make_default {
            Some(true) => DefaultChange::Set,
            Some(false) if member.default_wallet.as_ref() == Some(&roster.id) => DefaultChange::Clear,
            Some(false) | None => DefaultChange::Keep,
        },
        uses_invite: false,
    })
}

/// A current member leaving: anyone but a household's owner (who closes it instead).
/// What they pooled stays in the wallet; it stops being their default.
pub fn decide_leave(roster: &Roster, seat: &Seat, member: &Candidate) -> Result<DefaultChange, DomainError> {
    roster.must_be_open()?;
    if seat.role == Role::Owner {
        return Err(conflict(
            "owner_cannot_leave",
            "the owner of a household closes it instead of leaving",
        ));
    }
    Ok(match member.default_wallet.as_ref() == Some(&roster.id) {
        true => DefaultChange::Clear,
        false => DefaultChange::Keep,
    })
}

/// Who may receive a share of a closing wallet: its current members, of a wallet still
/// open. (How much each receives is [`crate::decide::plan_close`]'s.)
pub fn may_receive_split<'a>(
    roster: &Roster,
    members: impl IntoIterator<Item = &'a MemberId>,
) -> Result<(), DomainError> {
    roster.must_be_open()?;
    for member in members {
        if roster.seat(member).is_none() {
            return Err(DomainError::invalid(
                "split",
                format!("{member} is not a member of this wallet"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
