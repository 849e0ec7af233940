//! Standard ports (DESIGN §3) and the ALPN protocol ids that tell services apart when they share
//! TCP 443 on one host.

/// Client → MMR media: UDP, then TCP with RFC 4571 framing.
pub const MEDIA: u16 = 8801;
/// Client → ZC signalling, MMR VM → controller link, controller ↔ controller peer link.
pub const ZC: u16 = 8802;
/// Controller → cloud status sync.
pub const STATUS_SYNC: u16 = 8803;
/// Controller → cloud notification.
pub const NOTIFICATION: u16 = 8804;
/// MMR ↔ MMR cascade link of a meeting larger than one MMR.
pub const CASCADE: u16 = 8805;
/// The fallback for every link, and the cloud's HTTPS services.
pub const HTTPS: u16 = 443;

/// ALPN ids. Every TLS connection names one, so a 443 listener can route it.
pub mod alpn {
    /// Client ↔ ZC signalling (server-authenticated TLS; the client proves itself with a ticket).
    pub const SIGNAL: &[u8] = b"mc-signal/1";
    /// RTP over TLS, RFC 4571 framed: the last media fallback.
    pub const MEDIA: &[u8] = b"mc-media/1";
    /// MMR VM → controller link: mutual TLS.
    pub const LINK: &[u8] = b"mc-link/1";
    /// Controller ↔ controller peer link of an HA pair: mutual TLS.
    pub const PEER: &[u8] = b"mc-peer/1";
    /// Controller → cloud status sync: mutual TLS.
    pub const STATUS_SYNC: &[u8] = b"mc-status/1";
    /// Controller → cloud notification: mutual TLS.
    pub const NOTIFICATION: &[u8] = b"mc-notify/1";
    /// MMR ↔ MMR cascade link: mutual TLS.
    pub const CASCADE: &[u8] = b"mc-cascade/1";
    /// The cloud's HTTPS REST services.
    pub const HTTP1: &[u8] = b"http/1.1";
}
