use super::*;
use crate::ticket::TicketVerifier;

const OP: &str = "operator-key-0123456789";

fn mgmt() -> Management {
    Management::new(
        TicketSigner::from_seed(&[3; 32]),
        60_000,
        OP.into(),
        Rng::seed_from_u64(5),
        Box::new(MemoryStore),
        1_000,
    )
    .unwrap()
}

#[test]
fn tickets_name_the_meeting_and_verify_with_the_published_key() {
    let mut m = mgmt();
    let op = m.authenticate(Some(OP)).unwrap();
    let meeting = m.create_meeting(1_000, &op, " Standup ", None).unwrap();
    assert_eq!(meeting.topic, "Standup");
    let issued = m
        .issue_ticket(2_000, &op, meeting.id, Some("Grace"))
        .unwrap();
    let (pid, ticket) = (issued.participant, issued.ticket);
    assert_eq!(issued.expires_at_ms, 62_000);
    assert!(issued.starts_meeting, "the first ticket starts the meeting");
    let second = m.issue_ticket(2_500, &op, meeting.id, Some("Ada")).unwrap();
    assert!(!second.starts_meeting);
    let claims = TicketVerifier::new(m.ticket_public_key())
        .verify(3_000, &ticket)
        .unwrap();
    assert_eq!(claims.expected_participants, None);
    assert_eq!(
        (
            claims.meeting,
            claims.participant,
            claims.display_name.as_str()
        ),
        (meeting.id, pid, "Grace")
    );
}

#[test]
fn a_meetings_size_hint_is_kept_and_carried_by_each_of_its_tickets() {
    let mut m = mgmt();
    let op = m.authenticate(Some(OP)).unwrap();
    let meeting = m.create_meeting(0, &op, "town hall", Some(500)).unwrap();
    assert_eq!(meeting.expected_participants, Some(500));
    assert_eq!(
        m.meeting(meeting.id).unwrap().expected_participants,
        Some(500)
    );
    let ticket = m
        .issue_ticket(0, &op, meeting.id, Some("Ada"))
        .unwrap()
        .ticket;
    let claims = TicketVerifier::new(m.ticket_public_key())
        .verify(1, &ticket)
        .unwrap();
    assert_eq!(claims.expected_participants, Some(500));
    // A meeting stored before the hint existed loads without one.
    let old: Meeting =
        serde_json::from_str(r#"{"id":1,"topic":"t","host":null,"created_at_ms":0,"ended":null}"#)
            .unwrap();
    assert_eq!(old.expected_participants, None);
}

#[test]
fn keys_authenticate_and_roles_authorize() {
    let mut m = mgmt();
    assert!(matches!(
        m.authenticate(None),
        Err(ManagementError::Unauthenticated(_))
    ));
    assert!(matches!(
        m.authenticate(Some("nope")),
        Err(ManagementError::Unauthenticated(_))
    ));
    let op = m.authenticate(Some(OP)).unwrap();
    let (ada, ada_key) = m
        .create_user(0, &op, "ada@example.org", "Ada", Role::Member)
        .unwrap();
    let ada_caller = m.authenticate(Some(&ada_key)).unwrap();
    assert_eq!(ada_caller, Caller::User(ada.clone()));
    assert!(matches!(
        m.create_user(0, &ada_caller, "x@y.z", "X", Role::Member),
        Err(ManagementError::Forbidden(_))
    ));
    assert!(matches!(
        m.users(&ada_caller),
        Err(ManagementError::Forbidden(_))
    ));
    assert_eq!(
        m.user(&ada_caller, ada.id).unwrap().email,
        "ada@example.org"
    );

    // A member hosts their own meetings, joins under their own name, and may not end others'.
    let own = m.create_meeting(0, &ada_caller, "ada's", None).unwrap();
    assert_eq!(own.host, Some(ada.id));
    let ticket = m.issue_ticket(0, &ada_caller, own.id, None).unwrap().ticket;
    assert_eq!(
        TicketVerifier::new(m.ticket_public_key())
            .verify(0, &ticket)
            .unwrap()
            .display_name,
        "Ada"
    );
    let ops = m.create_meeting(0, &op, "operator's", None).unwrap();
    assert!(matches!(
        m.end_meeting(&ada_caller, ops.id, "bye"),
        Err(ManagementError::Forbidden(_))
    ));
    m.end_meeting(&ada_caller, own.id, "done").unwrap();
    assert_eq!(
        m.issue_ticket(0, &ada_caller, own.id, None).unwrap_err(),
        ManagementError::MeetingEnded(own.id)
    );
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let mut m = mgmt();
    let op = m.authenticate(Some(OP)).unwrap();
    assert!(matches!(
        m.create_meeting(0, &op, "  ", None),
        Err(ManagementError::Invalid { field: "topic", .. })
    ));
    assert_eq!(
        m.issue_ticket(0, &op, MeetingId(42), Some("x"))
            .unwrap_err(),
        ManagementError::NoSuchMeeting(MeetingId(42))
    );
    for bad in [0, u64::from(MAX_EXPECTED_PARTICIPANTS) + 1, u64::MAX] {
        assert!(
            matches!(
                m.create_meeting(0, &op, "t", Some(bad)),
                Err(ManagementError::Invalid {
                    field: "expected_participants",
                    ..
                })
            ),
            "{bad}"
        );
    }
    let id = m.create_meeting(0, &op, "t", None).unwrap().id;
    assert!(matches!(
        m.issue_ticket(0, &op, id, Some("a\u{7}b")),
        Err(ManagementError::Invalid {
            field: "display_name",
            ..
        })
    ));
    assert!(matches!(
        m.issue_ticket(0, &op, id, None),
        Err(ManagementError::Invalid {
            field: "display_name",
            ..
        })
    ));
    assert!(matches!(
        m.create_user(0, &op, "not-an-email", "X", Role::Member),
        Err(ManagementError::Invalid { field: "email", .. })
    ));
    m.create_user(0, &op, "a@b.c", "A", Role::Member).unwrap();
    assert!(matches!(
        m.create_user(0, &op, "A@B.C", "A2", Role::Member),
        Err(ManagementError::Duplicate(_))
    ));
}

/// A store that fails: nothing changes in memory either.
struct Broken;
impl Store for Broken {
    fn save_user(&mut self, _: &User) -> Result<(), StoreError> {
        Err(StoreStep::SavingUser.failed("disk full"))
    }
    fn save_meeting(&mut self, _: &Meeting) -> Result<(), StoreError> {
        Err(StoreStep::SavingMeeting.failed("disk full"))
    }
    fn load(&mut self) -> Result<(Vec<User>, Vec<Meeting>), StoreError> {
        Ok((Vec::new(), Vec::new()))
    }
}

#[test]
fn a_failed_write_changes_nothing() {
    let mut m = Management::new(
        TicketSigner::from_seed(&[3; 32]),
        60_000,
        OP.into(),
        Rng::seed_from_u64(5),
        Box::new(Broken),
        0,
    )
    .unwrap();
    let op = m.authenticate(Some(OP)).unwrap();
    assert_eq!(
        m.create_meeting(0, &op, "t", None).unwrap_err(),
        ManagementError::Storage(StoreStep::SavingMeeting.failed("disk full"))
    );
    assert_eq!(m.meetings().count(), 0);
}
