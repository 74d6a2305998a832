//! The local exchange simulator: a seeded model of one symbol's order flow
//! ([`flow`]) that produces the payloads Binance's market-data streams and REST
//! depth endpoint would send, so the bot can be run end to end on loopback
//! (`mmbot sim --synthetic`) with no network and reproducible data.

pub mod flow;
