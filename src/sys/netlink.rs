//! A small rtnetlink client: the five requests `linux.netDevices` needs (read a link's flags,
//! list its addresses, move and rename it into another network namespace, add an address,
//! set it up). Hand-built messages over a NETLINK_ROUTE socket, synchronous, one request in
//! flight; the socket works in the network namespace the caller was in when it opened it.
//! (The rtnetlink crate is async on tokio, which berth does not run; the two dozen constants
//! and three structs here are the whole protocol we use.)
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
};

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

/// One address of a link, as RTM_GETADDR reports it and RTM_NEWADDR takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    pub flags: u8,
    pub scope: u8,
    /// IFA_LOCAL (IPv4), empty when absent.
    pub local: Vec<u8>,
    /// IFA_ADDRESS.
    pub address: Vec<u8>,
}

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// The index of the link named `name` in the caller's network namespace.
pub fn index_of(name: &str) -> Result<i32, Errno> {
    let c = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: if_nametoindex reads a NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(Errno::last()),
        i => Ok(i as i32),
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align4(buf.len()), 0);
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; IFINFOMSG_LEN];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// The attributes after a fixed header: (type, data).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((typ, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Netlink {
    /// A NETLINK_ROUTE socket in the caller's current network namespace.
    pub fn open() -> Result<Netlink, Errno> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        Ok(Netlink { fd, seq: 0 })
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Send one request; collect the payloads of the answers until the ACK or DONE. An
    /// NLMSG_ERROR with a non-zero code is that errno.
    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<Vec<Vec<u8>>, Errno> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.raw(), &msg, MsgFlags::empty())?;
        let dump = flags & libc::NLM_F_DUMP as u16 == libc::NLM_F_DUMP as u16;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.raw(), &mut buf, MsgFlags::empty())?;
            let mut b = &buf[..n];
            while b.len() >= NLMSG_HDRLEN {
                let len = u32_at(b, 0) as usize;
                let mtype = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32_at(b, 8);
                if len < NLMSG_HDRLEN || len > b.len() {
                    return Err(Errno::EBADMSG);
                }
                let payload = &b[NLMSG_HDRLEN..len];
                b = &b[align4(len).min(b.len())..];
                if seq != self.seq {
                    continue;
                }
                match mtype as i32 {
                    libc::NLMSG_ERROR => {
                        let code =
                            i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        if code != 0 {
                            return Err(Errno::from_raw(-code));
                        }
                        return Ok(out);
                    }
                    libc::NLMSG_DONE => return Ok(out),
                    _ => out.push(payload.to_vec()),
                }
            }
            if !dump && !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// The link's flags (IFF_*).
    pub fn link_flags(&mut self, index: i32) -> Result<u32, Errno> {
        let ans = self.request(libc::RTM_GETLINK, 0, &ifinfomsg(index, 0, 0))?;
        let m = ans
            .first()
            .filter(|m| m.len() >= IFINFOMSG_LEN)
            .ok_or(Errno::ENODEV)?;
        Ok(u32_at(m, 8))
    }

    /// The addresses of link `index`, every family.
    pub fn addrs(&mut self, index: i32) -> Result<Vec<Addr>, Errno> {
        let req = [0u8; IFADDRMSG_LEN];
        let ans = self.request(libc::RTM_GETADDR, libc::NLM_F_DUMP as u16, &req)?;
        let mut out = Vec::new();
        for m in ans.iter().filter(|m| m.len() >= IFADDRMSG_LEN) {
            if u32_at(m, 4) as i32 != index {
                continue;
            }
            let mut a = Addr {
                family: m[0],
                prefixlen: m[1],
                flags: m[2],
                scope: m[3],
                local: vec![],
                address: vec![],
            };
            for (t, d) in attrs(&m[IFADDRMSG_LEN..]) {
                match t {
                    libc::IFA_LOCAL => a.local = d.to_vec(),
                    libc::IFA_ADDRESS => a.address = d.to_vec(),
                    _ => {}
                }
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Move link `index` into the network namespace `ns` under the name `name`, in one
    /// request: a name taken there fails with EEXIST and nothing moves.
    pub fn move_link(&mut self, index: i32, ns: RawFd, name: &str) -> Result<(), Errno> {
        let mut b = ifinfomsg(index, 0, 0);
        attr(&mut b, libc::IFLA_NET_NS_FD, &(ns as u32).to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(&mut b, libc::IFLA_IFNAME, &n);
        self.request(libc::RTM_NEWLINK, libc::NLM_F_ACK as u16, &b)
            .map(drop)
    }

    /// Add `a` to link `index`.
    pub fn add_addr(&mut self, index: i32, a: &Addr) -> Result<(), Errno> {
        let mut b = vec![a.family, a.prefixlen, a.flags, a.scope];
        b.extend_from_slice(&(index as u32).to_ne_bytes());
        if !a.local.is_empty() {
            attr(&mut b, libc::IFA_LOCAL, &a.local);
        }
        if !a.address.is_empty() {
            attr(&mut b, libc::IFA_ADDRESS, &a.address);
        }
        let flags = libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
        self.request(libc::RTM_NEWADDR, flags as u16, &b).map(drop)
    }

    /// Set link `index` up.
    pub fn set_up(&mut self, index: i32) -> Result<(), Errno> {
        let up = libc::IFF_UP as u32;
        self.request(
            libc::RTM_NEWLINK,
            libc::NLM_F_ACK as u16,
            &ifinfomsg(index, up, up),
        )
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip() {
        let mut b = Vec::new();
        attr(&mut b, 3, b"eth1\0");
        attr(&mut b, 28, &7u32.to_ne_bytes());
        assert_eq!(b.len(), 12 + 8);
        let a = attrs(&b);
        assert_eq!(a[0], (3, &b"eth1\0"[..]));
        assert_eq!(a[1].0, 28);
    }

    #[test]
    fn loopback_is_listed() {
        let mut nl = Netlink::open().unwrap();
        let lo = index_of("lo").unwrap();
        assert_ne!(nl.link_flags(lo).unwrap() & libc::IFF_UP as u32, 0);
        let addrs = nl.addrs(lo).unwrap();
        assert!(
            addrs.iter().any(|a| a.address == [127, 0, 0, 1]),
            "{addrs:?}"
        );
    }
}
