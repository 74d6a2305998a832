//! Tests of the TLS handshake checks and the blocking-free stream wrapper.

use super::*;

fn feed_all(p: &mut HandshakeParser, records: &[&[u8]], tls13: bool) -> Result<Vec<HandshakeOutcome>, TlsError> {
    records.iter().map(|r| p.feed(r, tls13)).collect()
}

#[test]
fn tickets_are_skipped_across_records() {
    let mut p = HandshakeParser::default();
    // Two tickets: the first split mid-header and mid-body, the second whole.
    let out = feed_all(&mut p, &[&[4, 0], &[0, 3, 9], &[9, 9, 4, 0, 0, 1, 7]], true).unwrap();
    assert_eq!(out.iter().map(|o| o.tickets).sum::<u64>(), 2);
    assert!(!p.in_message());
}

#[test]
fn key_update_is_read_and_must_end_the_record() {
    let mut p = HandshakeParser::default();
    assert_eq!(p.feed(&[24, 0, 0, 1, 1], true).unwrap().key_update, Some(true));
    assert_eq!(p.feed(&[4, 0, 0, 0, 24, 0, 0, 1, 0], true).unwrap().key_update, Some(false));
    assert!(p.feed(&[24, 0, 0, 1, 0, 4], true).is_err(), "data after KeyUpdate");
    let mut p = HandshakeParser::default();
    assert!(p.feed(&[24, 0, 0, 1, 2], true).is_err(), "bad request value");
    let mut p = HandshakeParser::default();
    assert!(p.feed(&[24, 0, 0, 2, 0, 0], true).is_err(), "bad length");
    let mut p = HandshakeParser::default();
    assert!(p.feed(&[24, 0, 0], true).is_ok());
    assert!(p.feed(&[1, 0], true).is_ok(), "KeyUpdate may span records when it is not the key change itself");
}

#[test]
fn unexpected_messages_are_errors() {
    assert!(HandshakeParser::default().feed(&[2, 0, 0, 0], true).is_err());
    assert!(HandshakeParser::default().feed(&[4, 0, 0, 0], false).is_err(), "no tickets in TLS 1.2 traffic");
    assert!(HandshakeParser::default().feed(&[], true).is_err());
    let mut p = HandshakeParser::default();
    assert_eq!(p.feed(&[0, 0, 0, 0], false).unwrap(), HandshakeOutcome::default(), "HelloRequest ignored");
    assert!(p.feed(&[0, 0, 0, 1, 0], false).is_err());
}

#[test]
fn errors_say_what_to_do() {
    let e = TlsError::SecretExtractionOff.to_string();
    assert!(e.contains("client_config()"), "{e}");
    let io: io::Error = TlsError::BadRecord("x").into();
    assert_eq!(io.kind(), io::ErrorKind::InvalidData);
}
