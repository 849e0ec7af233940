//! Many datagrams per system call, for real sockets on Linux: `recvmmsg` fills several slots of
//! an [`Inbox`] at once and `sendmmsg` sends a list of datagrams, each to its own address. The
//! kernel's per-call cost, not the MMR's work, bounds a forwarder that makes one call per
//! datagram; these share one call among many. Non-blocking: the caller waits for readiness.
//!
//! Datagrams to the same address go further with UDP segmentation offload (GSO, Linux 4.18):
//! one `sendmsg` carries a train of them, cut apart by the kernel (or the NIC) as late as it
//! can, so the UDP and IP send path runs once per train rather than once per datagram. A
//! fan-out has such trains whenever one receiver gets several streams: each of its copies of a
//! batch goes to the same address.

use crate::net::{Inbox, MAX_DATAGRAM};
use nix::sys::socket::{
    getsockopt, recvmmsg, sendmmsg, sockopt, ControlMessage, MsgFlags, MultiHeaders,
    SockaddrStorage,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, RawFd};

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

/// At most this many datagrams in one train (the kernel's `UDP_MAX_SEGMENTS` before 6.9).
const TRAIN_SEGMENTS: usize = 64;
/// A train's bytes stay inside one UDP length field.
const TRAIN_BYTES: usize = 65_000;
/// Only datagrams that fit an Ethernet frame (1,500 bytes less IPv6 and UDP headers) form
/// trains: a segment above the path's MTU makes the kernel refuse the whole train.
const TRAIN_SEGMENT_MAX: usize = 1_452;

/// Whether this socket's kernel cuts trains (asking is how one finds out: `UDP_SEGMENT`).
pub(crate) fn can_segment(socket: &impl AsFd) -> bool {
    getsockopt(socket, sockopt::UdpGsoSegment).is_ok()
}

/// How `msgs` go out in trains: the indices of `msgs` ordered by address (stable, so each
/// address's datagrams keep their order), and the ranges of that order that form one train
/// each — the same address, every datagram as long as the first but the last, which may be
/// shorter (that is how GSO cuts a train), within the kernel's limits. A datagram that cannot
/// lead a train (empty, or too long) is a train of one.
pub(crate) fn trains(msgs: &[(&[u8], SocketAddr)]) -> (Vec<usize>, Vec<Range<usize>>) {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by_key(|&i| msgs[i].1);
    let mut trains = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let (lead, dst) = msgs[order[start]];
        let (mut end, mut bytes) = (start + 1, lead.len());
        if can_lead(lead.len()) {
            while end < order.len() && end - start < TRAIN_SEGMENTS {
                let (next, to) = msgs[order[end]];
                // An empty last part would be no datagram at all once the train is cut.
                let fits = (1..=lead.len()).contains(&next.len());
                if to != dst || !fits || bytes + next.len() > TRAIN_BYTES {
                    break;
                }
                bytes += next.len();
                end += 1;
                if next.len() < lead.len() {
                    break;
                }
            }
        }
        trains.push(start..end);
        start = end;
    }
    (order, trains)
}

/// Whether a datagram this long may lead a train.
fn can_lead(len: usize) -> bool {
    (1..=TRAIN_SEGMENT_MAX).contains(&len)
}

/// Sends the first trains of `trains` (up to [`SEND_BATCH`]) in one call, each to its address,
/// cut by the kernel into datagrams of `segment` bytes (a train no longer than that is one
/// datagram); how many trains went. sendmmsg stops at the first train that fails and fails
/// only if it is the first: the kernel refuses a train whole (`EIO`: the device cannot checksum
/// for it; `EINVAL`: a segment longer than the path allows) or sends it whole.
pub(crate) fn send_trains(
    fd: RawFd,
    trains: &[(Vec<IoSlice>, SocketAddr)],
    segment: u16,
) -> io::Result<usize> {
    let trains = &trains[..trains.len().min(SEND_BATCH)];
    let mut headers =
        MultiHeaders::<SockaddrStorage>::preallocate(trains.len(), Some(nix::cmsg_space!(u16)));
    let addrs: Vec<Option<SockaddrStorage>> = trains
        .iter()
        .map(|(_, a)| Some(SockaddrStorage::from(*a)))
        .collect();
    let sent = sendmmsg(
        fd,
        &mut headers,
        trains.iter().map(|(parts, _)| parts),
        &addrs,
        [ControlMessage::UdpGsoSegments(&segment)],
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The trains as (address's port, lengths), in the order they go.
    fn plan(msgs: &[(&[u8], SocketAddr)]) -> Vec<(u16, Vec<usize>)> {
        let (order, trains) = trains(msgs);
        trains
            .into_iter()
            .map(|t| {
                let port = msgs[order[t.start]].1.port();
                (port, order[t].iter().map(|&i| msgs[i].0.len()).collect())
            })
            .collect()
    }

    #[test]
    fn a_train_is_one_address_with_equal_datagrams_and_a_shorter_last() {
        let (a, b, c) = (vec![1; 172], vec![2; 100], vec![3; 200]);
        let msgs = [
            (&a[..], addr(2)),
            (&a[..], addr(1)),
            (&a[..], addr(2)),
            (&b[..], addr(2)),
            (&a[..], addr(2)),
            (&c[..], addr(2)),
            (&a[..], addr(2)),
            (&a[..], addr(1)),
        ];
        assert_eq!(
            plan(&msgs),
            vec![
                (1, vec![172, 172]),
                (2, vec![172, 172, 100]),
                (2, vec![172]),
                (2, vec![200, 172]),
            ]
        );
    }

    #[test]
    fn trains_keep_to_the_kernels_limits() {
        let (small, empty, jumbo) = (vec![0; 10], Vec::new(), vec![0; 1_500]);
        let mut msgs = vec![(&small[..], addr(1)); 150];
        msgs.extend([(&empty[..], addr(2)), (&empty[..], addr(2))]);
        msgs.extend([(&small[..], addr(4)), (&empty[..], addr(4))]);
        msgs.extend([(&jumbo[..], addr(3)), (&jumbo[..], addr(3))]);
        let lengths: Vec<usize> = plan(&msgs).iter().map(|(_, l)| l.len()).collect();
        assert_eq!(lengths, vec![64, 64, 22, 1, 1, 1, 1, 1, 1]);
        let big = vec![0; 1_400];
        let msgs = vec![(&big[..], addr(1)); 50];
        let lengths: Vec<usize> = plan(&msgs).iter().map(|(_, l)| l.len()).collect();
        assert_eq!(lengths, vec![46, 4], "at most 65,000 bytes a train");
    }
}
