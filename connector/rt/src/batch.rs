//! Many datagrams per system call, for real sockets on Linux: `recvmmsg` fills several slots of
//! an [`Inbox`] at once and `sendmmsg` sends a list of datagrams, each to its own address. The
//! kernel's per-call cost, not the MMR's work, bounds a forwarder that makes one call per
//! datagram; these share one call among many. Non-blocking: the caller waits for readiness.

use crate::net::{Inbox, MAX_DATAGRAM};
use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// At most this many datagrams go in one `sendmmsg` (the kernel's own limit is 1,024).
pub(crate) const SEND_BATCH: usize = 64;

/// Receives what is waiting, up to the inbox's capacity; `WouldBlock` when nothing is.
pub(crate) fn recv(fd: RawFd, inbox: &mut Inbox) -> io::Result<()> {
    let capacity = inbox.capacity();
    let Inbox { data, got } = inbox;
    got.clear();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(capacity, None);
    let mut slices: Vec<[IoSliceMut; 1]> = data
        .chunks_mut(MAX_DATAGRAM)
        .map(|slot| [IoSliceMut::new(slot)])
        .collect();
    let received = recvmmsg(
        fd,
        &mut headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    // A slot holds the largest UDP payload, so nothing is truncated. Every datagram on a UDP
    // socket has an IP sender; one without would have nowhere to be answered, and is skipped.
    for (slot, msg) in received.enumerate() {
        if let Some(addr) = msg.address.as_ref().and_then(std_addr) {
            got.push((slot, msg.bytes, addr));
        }
    }
    Ok(())
}

/// Sends the first datagrams of `msgs` (up to [`SEND_BATCH`]) in one call; how many went.
pub(crate) fn send(fd: RawFd, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
    let msgs = &msgs[..msgs.len().min(SEND_BATCH)];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(msgs.len(), None);
    let slices: Vec<[IoSlice; 1]> = msgs.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = msgs
        .iter()
        .map(|(_, a)| Some(SockaddrStorage::from(*a)))
        .collect();
    let no_control: [ControlMessage; 0] = [];
    let sent = sendmmsg(
        fd,
        &mut headers,
        &slices,
        &addrs,
        no_control,
        MsgFlags::MSG_DONTWAIT,
    )?;
    Ok(sent.count())
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
        (Some(v4), _) => Some(SocketAddrV4::from(*v4).into()),
        (_, Some(v6)) => Some(SocketAddrV6::from(*v6).into()),
        _ => None,
    }
}
