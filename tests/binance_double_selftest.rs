//! Self-tests of the Binance spot test double (tests/binance_double/): each behaviour it offers
//! is checked through its HTTP and WebSocket doors, with the docs' own examples where they exist.

#[path = "binance_double/mod.rs"]
mod binance_double;

use binance_double::client::{Rest, Signer};
use binance_double::config::{DOC_HMAC_KEY, DOC_HMAC_SECRET};
use binance_double::BinanceDouble;

fn rest(d: &BinanceDouble) -> Rest {
    Rest::new(&d.rest_url(), DOC_HMAC_KEY, Signer::Hmac(DOC_HMAC_SECRET.as_bytes().to_vec()))
}

#[test]
fn time_is_served() {
    let d = BinanceDouble::start_default().unwrap();
    let r = rest(&d).call("GET", "/api/v3/time", &[], false);
    assert_eq!(r.status, 200);
}
