//! `moat do --network sandbox`'s NAT: one nftables table of its own,
//! `table ip moat-do-HEX { chain postrouting { ip saddr NET/30 masquerade } }`.
//!
//! Made over nfnetlink with the table flag `owner` (Linux 5.12): the kernel
//! removes the table when the netlink socket that made it closes, so the
//! table goes when `moat do` ends, however it ends (SIGKILL included), and
//! no other process can change it meanwhile. Nothing else of the host's
//! firewall is read or touched.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::sandbox::network::{nest, put, put_str};
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

/// Why the NAT table could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// The nfnetlink socket could not be opened or used.
    #[error("cannot make the sandbox's NAT table {table} over nfnetlink ({step}): {source}")]
    Netlink {
        /// The table.
        table: String,
        /// What was being done.
        step: &'static str,
        /// What the kernel said.
        source: Errno,
    },
    /// The kernel refused the table, its chain or its rule.
    #[error(
        "the kernel refused the sandbox's NAT table {table} ({source}); moat do --network sandbox needs nftables \
         with NAT (nf_tables, nft_masq) and Linux 5.12 or later"
    )]
    Refused {
        /// The table.
        table: String,
        /// What the kernel said.
        source: Errno,
    },
}

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFPROTO_IPV4: u8 = 2;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFT_TABLE_F_OWNER: u32 = 0x2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NF_INET_POST_ROUTING: u32 = 4;
/// nft's `srcnat` priority.
const NF_IP_PRI_NAT_SRC: i32 = 100;
const NF_ACCEPT: u32 = 1;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_REG_1: u32 = 1;
/// The source address's offset in the IPv4 header.
const IPV4_SADDR: u32 = 12;
const CHAIN: &str = "postrouting";

/// The NAT table; dropping it closes its owner socket, which removes it.
#[derive(Debug)]
pub struct Nat {
    _owner: OwnedFd,
}

impl Nat {
    /// Makes `table ip TABLE` masquerading what comes from `net/prefix`.
    pub fn masquerade(table: &str, net: Ipv4Addr, prefix: u8) -> Result<Nat, NatError> {
        let failed = |step| move |source| NatError::Netlink { table: table.to_owned(), step, source };
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(failed("socket"))?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(failed("bind"))?;
        let batch = batch(table, net, prefix);
        let sent = socket::send(fd.as_raw_fd(), &batch, MsgFlags::empty()).map_err(failed("send"))?;
        if sent != batch.len() {
            return Err(failed("send")(Errno::EMSGSIZE));
        }
        // One ack per message of the batch, or the error of the first refused.
        let mut acks = 0;
        let mut buf = vec![0u8; 8192];
        while acks < 3 {
            let n = socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(failed("recv"))?;
            let mut b = &buf[..n];
            while b.len() >= 16 {
                let len = u32::from_ne_bytes(b[..4].try_into().expect("four bytes")) as usize;
                let ty = u16::from_ne_bytes([b[4], b[5]]);
                if len < 16 || len > b.len() {
                    return Err(failed("recv")(Errno::EPROTO));
                }
                if ty == NLMSG_ERROR {
                    let code = b.get(16..20).map_or(0, |c| i32::from_ne_bytes(c.try_into().expect("four bytes")));
                    if code < 0 {
                        return Err(NatError::Refused { table: table.to_owned(), source: Errno::from_raw(-code) });
                    }
                    acks += 1;
                }
                b = &b[((len + 3) & !3).min(b.len())..];
            }
        }
        Ok(Nat { _owner: fd })
    }
}

/// The batch making the table (owned by the sending socket), its NAT chain
/// and the masquerade rule, each message acked.
fn batch(table: &str, net: Ipv4Addr, prefix: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 0;
    let mut message = |out: &mut Vec<u8>, ty: u16, flags: u16, family: u8, attrs: Vec<u8>| {
        seq += 1;
        let len = 16 + 4 + attrs.len();
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        out.extend_from_slice(&(seq as u32).to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version 0, the resource id (the subsystem for batches).
        out.push(family);
        out.push(0);
        let res_id = if family == 0 { NFNL_SUBSYS_NFTABLES } else { 0 };
        out.extend_from_slice(&res_id.to_be_bytes());
        out.extend_from_slice(&attrs);
    };
    let nft = |msg: u16| (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let create = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
    message(&mut out, NFNL_MSG_BATCH_BEGIN, 0, 0, Vec::new());

    let mut a = Vec::new();
    put_str(&mut a, NFTA_TABLE_NAME, table);
    put(&mut a, NFTA_TABLE_FLAGS, &NFT_TABLE_F_OWNER.to_be_bytes());
    message(&mut out, nft(NFT_MSG_NEWTABLE), create, NFPROTO_IPV4, a);

    let mut a = Vec::new();
    put_str(&mut a, NFTA_CHAIN_TABLE, table);
    put_str(&mut a, NFTA_CHAIN_NAME, CHAIN);
    nest(&mut a, NFTA_CHAIN_HOOK, |h| {
        put(h, NFTA_HOOK_HOOKNUM, &NF_INET_POST_ROUTING.to_be_bytes());
        put(h, NFTA_HOOK_PRIORITY, &NF_IP_PRI_NAT_SRC.to_be_bytes());
    });
    put(&mut a, NFTA_CHAIN_POLICY, &NF_ACCEPT.to_be_bytes());
    put_str(&mut a, NFTA_CHAIN_TYPE, "nat");
    message(&mut out, nft(NFT_MSG_NEWCHAIN), create, NFPROTO_IPV4, a);

    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
    let masked = u32::from(net) & mask;
    let mut a = Vec::new();
    put_str(&mut a, NFTA_RULE_TABLE, table);
    put_str(&mut a, NFTA_RULE_CHAIN, CHAIN);
    nest(&mut a, NFTA_RULE_EXPRESSIONS, |e| {
        expression(e, "payload", |d| {
            put(d, NFTA_PAYLOAD_DREG, &NFT_REG_1.to_be_bytes());
            put(d, NFTA_PAYLOAD_BASE, &NFT_PAYLOAD_NETWORK_HEADER.to_be_bytes());
            put(d, NFTA_PAYLOAD_OFFSET, &IPV4_SADDR.to_be_bytes());
            put(d, NFTA_PAYLOAD_LEN, &4u32.to_be_bytes());
        });
        expression(e, "bitwise", |d| {
            put(d, NFTA_BITWISE_SREG, &NFT_REG_1.to_be_bytes());
            put(d, NFTA_BITWISE_DREG, &NFT_REG_1.to_be_bytes());
            put(d, NFTA_BITWISE_LEN, &4u32.to_be_bytes());
            nest(d, NFTA_BITWISE_MASK, |v| put(v, NFTA_DATA_VALUE, &mask.to_be_bytes()));
            nest(d, NFTA_BITWISE_XOR, |v| put(v, NFTA_DATA_VALUE, &[0; 4]));
        });
        expression(e, "cmp", |d| {
            put(d, NFTA_CMP_SREG, &NFT_REG_1.to_be_bytes());
            put(d, NFTA_CMP_OP, &NFT_CMP_EQ.to_be_bytes());
            nest(d, NFTA_CMP_DATA, |v| put(v, NFTA_DATA_VALUE, &masked.to_be_bytes()));
        });
        expression(e, "masq", |_| {});
    });
    message(&mut out, nft(NFT_MSG_NEWRULE), create, NFPROTO_IPV4, a);

    message(&mut out, NFNL_MSG_BATCH_END, 0, 0, Vec::new());
    out
}

/// One element of a rule's expression list.
fn expression(list: &mut Vec<u8>, name: &str, data: impl FnOnce(&mut Vec<u8>)) {
    nest(list, NFTA_LIST_ELEM, |e| {
        put_str(e, NFTA_EXPR_NAME, name);
        nest(e, NFTA_EXPR_DATA, data);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (CAP_NET_ADMIN in the host's namespace), as `moat do
    /// --network sandbox` does; the table is made with a name of its own
    /// and is gone once its socket closes.
    #[test]
    fn the_table_masquerades_its_net_and_goes_with_its_socket() {
        let table = format!("moat-do-test{:x}", std::process::id());
        let listed = || {
            std::process::Command::new("nft")
                .args(["list", "table", "ip", &table])
                .output()
                .map(|o| (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned()))
                .expect("run nft (Debian: nftables)")
        };
        let nat = Nat::masquerade(&table, Ipv4Addr::new(100, 64, 7, 6), 30).expect("make the table");
        let (exists, text) = listed();
        assert!(exists, "no table {table} while its socket is open");
        assert!(text.contains("type nat hook postrouting priority srcnat; policy accept;"), "{text}");
        assert!(text.contains("ip saddr 100.64.7.4/30 masquerade"), "{text}");
        assert!(text.contains("flags owner"), "{text}");
        let again = Nat::masquerade(&table, Ipv4Addr::new(100, 64, 7, 6), 30).unwrap_err();
        assert!(matches!(again, NatError::Refused { .. }), "a second table of the name: {again}");
        drop(nat);
        assert!(!listed().0, "table {table} outlived its socket");
    }
}
