//! Position accounting (being written).
