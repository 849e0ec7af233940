//! SHA-256 as lowercase hex: how API keys are stored and how files and builds are named.

pub fn sha256_hex(data: &[u8]) -> String {
    mc_wire::hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}
