//! nftables over netlink: the messages of one transaction (an NFNETLINK
//! batch), built by hand from typed values, and its commit on a
//! `NETLINK_NETFILTER` socket of the calling thread's network namespace.
//!
//! Why by hand: what ctr asks of nftables is a handful of message kinds
//! (tables, chains, maps, elements, rules) and a dozen expressions; the
//! crates that wrap libnftnl would link a C library into the setuid helper,
//! and spawning `nft` costs about 5 ms a run (it also lists the ruleset
//! first, to fill its cache). The kernel applies a batch atomically: every
//! message in it takes effect, or none does.
//!
//! Every number below is a constant of the kernel's uapi
//! (`linux/netfilter/nf_tables.h`, `nfnetlink.h`, `netlink.h`); the byte
//! order of each attribute is the kernel's: big-endian for the numbers of
//! nf_tables' own attributes, native for netlink's headers, and for
//! register data the byte order of the value in the packet (network order)
//! or in the kernel (native order: `fib` and `ct status`).

use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::io;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

// enum nf_tables_msg_types
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_DATA_LEN: u16 = 7;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_USERDATA: u16 = 13;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;

const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
const NFT_JUMP: i32 = -3;
const NF_DROP: i32 = 0;
const NF_ACCEPT: u32 = 1;
/// The 16-byte registers 1 and 2, and the second 4-byte one (concatenations).
const NFT_REG_VERDICT: u32 = 0;
pub(crate) const NFT_REG_1: u32 = 1;
pub(crate) const NFT_REG_2: u32 = 2;
pub(crate) const NFT_REG32_01: u32 = 9;
/// NFTNL_UDATA_RULE_COMMENT: a rule comment in the user data TLVs.
const UDATA_RULE_COMMENT: u8 = 0;

/// The nfproto of a table's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Ipv4 = 2,
    Bridge = 7,
}

/// Netfilter hooks (`enum nf_inet_hooks`; the bridge's share the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    Prerouting = 0,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

/// A base chain's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BaseChain {
    pub kind: &'static str,
    pub hook: Hook,
    pub priority: i32,
}

/// A map's key type, as nft's type ids and the key's length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// `inet_proto . inet_service`: two 4-byte fields.
    ProtoService,
    /// `ipv4_addr` (with `flags interval`: prefixes).
    Ipv4Interval,
    /// `ifname`.
    Ifname,
}

impl KeyType {
    /// The user data nft stores with such a map (libnftnl's set TLVs: key
    /// and data byte order, and for the concatenation its fields), which
    /// only `nft list` reads: without the key's byte order it shows an
    /// interface name as "".
    fn userdata(self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut tlv = |kind: u8, value: &[u8]| {
            out.push(kind);
            out.push(u8::try_from(value.len()).expect("a short value"));
            out.extend_from_slice(value);
        };
        // nft's byte orders: 0 invalid (a concatenation), 1 host, 2 big endian.
        let key_order: u32 = match self {
            KeyType::ProtoService => 0,
            KeyType::Ipv4Interval => 2,
            KeyType::Ifname => 1,
        };
        tlv(0, &key_order.to_ne_bytes()); // NFTNL_UDATA_SET_KEYBYTEORDER
        tlv(1, &0u32.to_ne_bytes()); // NFTNL_UDATA_SET_DATABYTEORDER
        if self == KeyType::ProtoService {
            tlv(3, &[0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00]); // NFTNL_UDATA_SET_KEY_TYPEOF, as nft writes it
        }
        tlv(6, &0u32.to_ne_bytes()); // NFTNL_UDATA_SET_DATA_INTERVAL
        out
    }

    fn type_and_len(self) -> (u32, u32) {
        // nft's datatype ids: inet_proto 12, inet_service 13 (a concatenation
        // shifts the first left by 6 bits), ipv4_addr 7, ifname 41.
        match self {
            KeyType::ProtoService => ((12 << 6) | 13, 8),
            KeyType::Ipv4Interval => (7, 4),
            KeyType::Ifname => (41, 16),
        }
    }
}

/// Where a payload expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    Link = 0,
    Network = 1,
    Transport = 2,
}

/// The expressions ctr's rules are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `meta KEY` into a register (keys of `enum nft_meta_keys`).
    Meta {
        key: u32,
        dreg: u32,
    },
    Payload {
        base: Base,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// Register 1 compared with `data`.
    Cmp {
        neq: bool,
        data: Vec<u8>,
    },
    /// Register 1 = (register 1 & mask) ^ 0.
    Mask {
        mask: Vec<u8>,
    },
    /// `fib daddr type` into register 1.
    FibDaddrType,
    /// `ct status` into register 1.
    CtStatus,
    /// A verdict map lookup of register 1.
    Vmap {
        map: String,
    },
    Drop,
    /// A value into register `dreg`.
    Immediate {
        dreg: u32,
        data: Vec<u8>,
    },
    /// DNAT to the address in register 1 and the port in register 2.
    Dnat,
    Masquerade,
    Notrack,
}

pub(crate) const META_PROTOCOL: u32 = 1;
pub(crate) const META_IIFNAME: u32 = 6;
pub(crate) const META_OIFNAME: u32 = 7;
pub(crate) const META_L4PROTO: u32 = 16;

/// A map element: `key : jump chain`, or an interval's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub key: Vec<u8>,
    /// None: the end of an interval (which carries no verdict).
    pub jump: Option<String>,
}

/// Attributes of one message, appended to the batch's buffer.
struct Attrs<'a> {
    buf: &'a mut Vec<u8>,
}

/// Pads to netlink's 4-byte alignment.
fn align(buf: &mut Vec<u8>) {
    buf.resize(buf.len().next_multiple_of(4), 0);
}

impl Attrs<'_> {
    fn bytes(&mut self, kind: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).expect("an attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        align(self.buf);
    }

    /// A NUL-terminated string.
    fn str(&mut self, kind: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.bytes(kind, &data);
    }

    fn u32(&mut self, kind: u16, value: u32) {
        self.bytes(kind, &value.to_be_bytes());
    }

    fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Attrs<'_>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        f(&mut Attrs { buf: self.buf });
        let len = u16::try_from(self.buf.len() - start).expect("an attribute under 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn value(&mut self, kind: u16, data: &[u8]) {
        self.nest(kind, |a| a.bytes(NFTA_DATA_VALUE, data));
    }

    fn verdict(&mut self, kind: u16, code: i32, chain: Option<&str>) {
        self.nest(kind, |a| {
            a.nest(NFTA_DATA_VERDICT, |v| {
                v.bytes(NFTA_VERDICT_CODE, &code.to_be_bytes());
                if let Some(chain) = chain {
                    v.str(NFTA_VERDICT_CHAIN, chain);
                }
            })
        });
    }

    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Attrs<'_>)) {
        self.nest(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, name);
            e.nest(NFTA_EXPR_DATA, data);
        });
    }
}

impl Expr {
    fn encode(&self, a: &mut Attrs<'_>) {
        match self {
            Expr::Meta { key, dreg } => a.expr("meta", |d| {
                d.u32(1, *dreg); // NFTA_META_DREG
                d.u32(2, *key); // NFTA_META_KEY
            }),
            Expr::Payload { base, offset, len, dreg } => a.expr("payload", |d| {
                d.u32(1, *dreg); // NFTA_PAYLOAD_DREG
                d.u32(2, *base as u32); // NFTA_PAYLOAD_BASE
                d.u32(3, *offset); // NFTA_PAYLOAD_OFFSET
                d.u32(4, *len); // NFTA_PAYLOAD_LEN
            }),
            Expr::Cmp { neq, data } => a.expr("cmp", |d| {
                d.u32(1, NFT_REG_1); // NFTA_CMP_SREG
                d.u32(2, u32::from(*neq)); // NFTA_CMP_OP: NFT_CMP_EQ or NFT_CMP_NEQ
                d.value(3, data); // NFTA_CMP_DATA
            }),
            Expr::Mask { mask } => a.expr("bitwise", |d| {
                d.u32(1, NFT_REG_1); // NFTA_BITWISE_SREG
                d.u32(2, NFT_REG_1); // NFTA_BITWISE_DREG
                d.u32(3, u32::try_from(mask.len()).expect("a short mask")); // NFTA_BITWISE_LEN
                d.value(4, mask); // NFTA_BITWISE_MASK
                d.value(5, &vec![0; mask.len()]); // NFTA_BITWISE_XOR
            }),
            Expr::FibDaddrType => a.expr("fib", |d| {
                d.u32(1, NFT_REG_1); // NFTA_FIB_DREG
                d.u32(2, 3); // NFTA_FIB_RESULT: NFT_FIB_RESULT_ADDRTYPE
                d.u32(3, 1 << 1); // NFTA_FIB_FLAGS: NFTA_FIB_F_DADDR
            }),
            Expr::CtStatus => a.expr("ct", |d| {
                d.u32(1, NFT_REG_1); // NFTA_CT_DREG
                d.u32(2, 2); // NFTA_CT_KEY: NFT_CT_STATUS
            }),
            Expr::Vmap { map } => a.expr("lookup", |d| {
                d.str(1, map); // NFTA_LOOKUP_SET
                d.u32(2, NFT_REG_1); // NFTA_LOOKUP_SREG
                d.u32(3, NFT_REG_VERDICT); // NFTA_LOOKUP_DREG
            }),
            Expr::Drop => a.expr("immediate", |d| {
                d.u32(1, NFT_REG_VERDICT); // NFTA_IMMEDIATE_DREG
                d.verdict(2, NF_DROP, None); // NFTA_IMMEDIATE_DATA
            }),
            Expr::Immediate { dreg, data } => a.expr("immediate", |d| {
                d.u32(1, *dreg);
                d.value(2, data);
            }),
            Expr::Dnat => a.expr("nat", |d| {
                d.u32(1, 1); // NFTA_NAT_TYPE: NFT_NAT_DNAT
                d.u32(2, Proto::Ipv4 as u32); // NFTA_NAT_FAMILY
                d.u32(3, NFT_REG_1); // NFTA_NAT_REG_ADDR_MIN
                d.u32(5, NFT_REG_2); // NFTA_NAT_REG_PROTO_MIN
                d.u32(7, 0x2); // NFTA_NAT_FLAGS: NF_NAT_RANGE_PROTO_SPECIFIED
            }),
            Expr::Masquerade => a.expr("masq", |_| {}),
            Expr::Notrack => a.expr("notrack", |_| {}),
        }
    }
}

/// One transaction: messages between a batch begin and end, each with its
/// description (nft syntax) for error messages.
pub(crate) struct Batch {
    buf: Vec<u8>,
    labels: Vec<String>,
    /// NLM_F_EXCL on the next message.
    exclusive_next: bool,
}

/// The first sequence number of a batch's messages (the begin message is 0).
const FIRST_SEQ: u32 = 1;

impl Batch {
    pub fn new() -> Self {
        let mut batch = Self { buf: Vec::with_capacity(4096), labels: Vec::new(), exclusive_next: false };
        batch.header(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, 0, NFNL_SUBSYS_NFTABLES);
        batch
    }

    /// How many messages (besides begin and end) the batch holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    fn header(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `finish_message`
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        self.buf.push(family); // struct nfgenmsg
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.finish_message(start);
        start
    }

    fn finish_message(&mut self, start: usize) {
        let len = u32::try_from(self.buf.len() - start).expect("a message under 4 GiB");
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn message(&mut self, kind: u16, create: bool, proto: Proto, label: String, body: impl FnOnce(&mut Attrs<'_>)) {
        let seq = FIRST_SEQ + u32::try_from(self.labels.len()).expect("fewer than 2^32 messages");
        let mut flags = NLM_F_REQUEST | NLM_F_ACK | if create { NLM_F_CREATE } else { 0 };
        if kind == NFT_MSG_NEWRULE {
            // Appended, as `add rule`: without it a rule goes first.
            flags |= NLM_F_APPEND;
        }
        if std::mem::take(&mut self.exclusive_next) {
            flags |= NLM_F_EXCL;
        }
        let start = self.header((NFNL_SUBSYS_NFTABLES << 8) | kind, flags, seq, proto as u8, 0);
        body(&mut Attrs { buf: &mut self.buf });
        self.finish_message(start);
        self.labels.push(label);
    }

    /// `add table`: created if missing (no NLM_F_EXCL).
    pub fn add_table(&mut self, proto: Proto, table: &str, label: String) {
        self.message(NFT_MSG_NEWTABLE, true, proto, label, |a| {
            a.str(NFTA_TABLE_NAME, table);
            a.u32(NFTA_TABLE_FLAGS, 0);
        });
    }

    pub fn delete_table(&mut self, proto: Proto, table: &str, label: String) {
        self.message(NFT_MSG_DELTABLE, false, proto, label, |a| a.str(NFTA_TABLE_NAME, table));
    }

    /// `add chain`, a base chain (policy accept) when `base` is given; with
    /// `exclusive`, `create chain`: EEXIST if it exists.
    pub fn add_chain(
        &mut self,
        proto: Proto,
        table: &str,
        chain: &str,
        base: Option<BaseChain>,
        exclusive: bool,
        label: String,
    ) {
        if exclusive {
            self.exclusive_next = true;
        }
        self.message(NFT_MSG_NEWCHAIN, true, proto, label, |a| {
            a.str(NFTA_CHAIN_TABLE, table);
            a.str(NFTA_CHAIN_NAME, chain);
            if let Some(base) = base {
                a.nest(NFTA_CHAIN_HOOK, |h| {
                    h.u32(NFTA_HOOK_HOOKNUM, base.hook as u32);
                    h.bytes(NFTA_HOOK_PRIORITY, &base.priority.to_be_bytes());
                });
                a.u32(NFTA_CHAIN_POLICY, NF_ACCEPT);
                a.str(NFTA_CHAIN_TYPE, base.kind);
            }
        });
    }

    /// `flush chain`: a rule deletion that names the chain and no handle.
    pub fn flush_chain(&mut self, proto: Proto, table: &str, chain: &str, label: String) {
        self.message(NFT_MSG_DELRULE, false, proto, label, |a| {
            a.str(NFTA_RULE_TABLE, table);
            a.str(NFTA_RULE_CHAIN, chain);
        });
    }

    pub fn delete_chain(&mut self, proto: Proto, table: &str, chain: &str, label: String) {
        self.message(NFT_MSG_DELCHAIN, false, proto, label, |a| {
            a.str(NFTA_CHAIN_TABLE, table);
            a.str(NFTA_CHAIN_NAME, chain);
        });
    }

    /// `add map ... { type KEY : verdict; }` (an interval map for
    /// [`KeyType::Ipv4Interval`]).
    pub fn add_map(&mut self, proto: Proto, table: &str, map: &str, key: KeyType, label: String) {
        let id = u32::try_from(self.labels.len()).expect("fewer than 2^32 messages");
        self.message(NFT_MSG_NEWSET, true, proto, label, |a| {
            let (key_type, key_len) = key.type_and_len();
            let interval = if key == KeyType::Ipv4Interval { NFT_SET_INTERVAL } else { 0 };
            a.str(NFTA_SET_TABLE, table);
            a.str(NFTA_SET_NAME, map);
            a.u32(NFTA_SET_FLAGS, NFT_SET_MAP | interval);
            a.u32(NFTA_SET_KEY_TYPE, key_type);
            a.u32(NFTA_SET_KEY_LEN, key_len);
            a.u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
            a.u32(NFTA_SET_DATA_LEN, 0);
            a.u32(NFTA_SET_ID, id);
            a.bytes(NFTA_SET_USERDATA, &key.userdata());
        });
    }

    fn elements(&mut self, kind: u16, proto: Proto, table: &str, map: &str, elements: &[Element], label: String) {
        let create = kind == NFT_MSG_NEWSETELEM;
        self.message(kind, create, proto, label, |a| {
            a.str(NFTA_SET_ELEM_LIST_TABLE, table);
            a.str(NFTA_SET_ELEM_LIST_SET, map);
            a.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |list| {
                for element in elements {
                    list.nest(NFTA_LIST_ELEM, |e| {
                        e.value(NFTA_SET_ELEM_KEY, &element.key);
                        match &element.jump {
                            Some(chain) if create => e.verdict(NFTA_SET_ELEM_DATA, NFT_JUMP, Some(chain)),
                            Some(_) => {}
                            None => e.u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END),
                        }
                    });
                }
            });
        });
    }

    /// `add element`: an element already there with the same verdict is
    /// success; with another verdict, EEXIST (and the batch is undone).
    pub fn add_elements(&mut self, proto: Proto, table: &str, map: &str, elements: &[Element], label: String) {
        self.elements(NFT_MSG_NEWSETELEM, proto, table, map, elements, label);
    }

    pub fn delete_elements(&mut self, proto: Proto, table: &str, map: &str, elements: &[Element], label: String) {
        self.elements(NFT_MSG_DELSETELEM, proto, table, map, elements, label);
    }

    /// `add rule` (appended), its comment in the rule's user data.
    pub fn add_rule(
        &mut self,
        proto: Proto,
        table: &str,
        chain: &str,
        exprs: &[Expr],
        comment: Option<&str>,
        label: String,
    ) {
        self.message(NFT_MSG_NEWRULE, true, proto, label, |a| {
            a.str(NFTA_RULE_TABLE, table);
            a.str(NFTA_RULE_CHAIN, chain);
            a.nest(NFTA_RULE_EXPRESSIONS, |list| exprs.iter().for_each(|e| e.encode(list)));
            if let Some(comment) = comment {
                let len = u8::try_from(comment.len() + 1).expect("a comment under 255 bytes");
                let mut udata = vec![UDATA_RULE_COMMENT, len];
                udata.extend_from_slice(comment.as_bytes());
                udata.push(0);
                a.bytes(NFTA_RULE_USERDATA, &udata);
            }
        });
    }

    /// The batch's bytes, the end message appended.
    fn finish(mut self) -> (Vec<u8>, Vec<String>) {
        let seq = FIRST_SEQ + u32::try_from(self.labels.len()).expect("fewer than 2^32 messages");
        self.header(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
        (self.buf, self.labels)
    }

    /// Sends the batch and reads the kernel's answer to each message: all
    /// of it applied, or (on the first refusal) none of it.
    pub fn commit(self) -> Result<(), NftError> {
        let (bytes, labels) = self.finish();
        if labels.is_empty() {
            return Ok(());
        }
        let socket = Socket::new(NETLINK_NETFILTER).map_err(NftError::Socket)?;
        // Acks without a copy of the request: only the header comes back.
        socket.set_cap_ack(true).map_err(NftError::Socket)?;
        let sent = socket.send_to(&bytes, &SocketAddr::new(0, 0), 0).map_err(NftError::Socket)?;
        if sent != bytes.len() {
            return Err(NftError::Socket(io::Error::other("short send of an nftables batch")));
        }
        // The kernel handles a batch within the send, so every answer is
        // queued by now: read until there is none left.
        let mut acks = 0;
        let mut first_error: Option<(u32, io::Error)> = None;
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            match socket.recv(&mut buf, libc_msg_dontwait()) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NftError::Socket(e)),
            }
            for (seq, errno) in parse_acks(&buf) {
                match errno {
                    0 => acks += 1,
                    e if first_error.is_none() => first_error = Some((seq, io::Error::from_raw_os_error(e))),
                    _ => {}
                }
            }
        }
        let label = |seq: u32| {
            seq.checked_sub(FIRST_SEQ)
                .and_then(|i| labels.get(i as usize))
                .cloned()
                .unwrap_or_else(|| format!("message {seq}"))
        };
        if let Some((seq, source)) = first_error {
            return Err(NftError::Refused { message: label(seq), source });
        }
        if acks != labels.len() {
            return Err(NftError::Unanswered { answered: acks, sent: labels.len() });
        }
        Ok(())
    }
}

/// MSG_DONTWAIT (`linux/socket.h`).
fn libc_msg_dontwait() -> i32 {
    0x40
}

/// `(sequence number, errno)` of every NLMSG_ERROR in `buf` (0 for an ack).
fn parse_acks(buf: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
        let seq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
        if len < 16 || len > rest.len() {
            break;
        }
        if kind == NLMSG_ERROR && len >= 20 {
            let error = i32::from_ne_bytes(rest[16..20].try_into().expect("4 bytes"));
            out.push((seq, -error));
        }
        rest = &rest[(len + 3) & !3..];
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("netlink socket for nftables: {0} (this needs CAP_NET_ADMIN in the network namespace)")]
    Socket(#[source] io::Error),
    #[error("nftables refused `{message}`: {source}")]
    Refused { message: String, source: io::Error },
    #[error("nftables answered {answered} of the {sent} messages of a batch")]
    Unanswered { answered: usize, sent: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_framed_by_begin_and_end_and_numbers_its_messages() {
        let mut batch = Batch::new();
        batch.add_table(Proto::Ipv4, "ctr", "add table ip ctr".into());
        batch.flush_chain(Proto::Bridge, "ctr", "c", "flush chain bridge ctr c".into());
        assert_eq!(batch.len(), 2);
        let (bytes, labels) = batch.finish();
        assert_eq!(labels, ["add table ip ctr", "flush chain bridge ctr c"]);
        let mut messages = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
            let flags = u16::from_ne_bytes(rest[6..8].try_into().unwrap());
            let seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
            messages.push((kind, flags, seq, rest[16], u16::from_be_bytes([rest[18], rest[19]])));
            rest = &rest[len..];
        }
        assert_eq!(
            messages,
            [(0x10, 0x1, 0, 0, 10), (0x0a00, 0x405, 1, 2, 0), (0x0a08, 0x5, 2, 7, 0), (0x11, 0x1, 3, 0, 10),]
        );
        // The table message: name "ctr\0" and flags 0, both 8-byte attributes.
        let table = &bytes[20..56];
        assert_eq!(&table[20..28], &[8, 0, 1, 0, b'c', b't', b'r', 0]);
        assert_eq!(&table[28..36], &[8, 0, 2, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn nested_attributes_carry_their_length_and_the_nested_flag() {
        let mut buf = Vec::new();
        Attrs { buf: &mut buf }.verdict(NFTA_SET_ELEM_DATA, NFT_JUMP, Some("c1"));
        // outer(4) + data_verdict(4) + code(8) + chain "c1\0" padded (8)
        assert_eq!(buf.len(), 24);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 24);
        assert_eq!(u16::from_ne_bytes([buf[2], buf[3]]), NFTA_SET_ELEM_DATA | NLA_F_NESTED);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 20);
        assert_eq!(&buf[12..16], &(-3i32).to_be_bytes());
        assert_eq!(&buf[16..24], &[7, 0, 2, 0, b'c', b'1', 0, 0]);
    }

    #[test]
    fn acks_and_errors_are_read_by_sequence_number() {
        let mut buf = Vec::new();
        for (seq, error) in [(1u32, 0i32), (2, -17)] {
            buf.extend_from_slice(&36u32.to_ne_bytes());
            buf.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            buf.extend_from_slice(&0u16.to_ne_bytes());
            buf.extend_from_slice(&seq.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&error.to_ne_bytes());
            buf.extend_from_slice(&[0; 16]);
        }
        assert_eq!(parse_acks(&buf), [(1, 0), (2, 17)]);
        assert_eq!(parse_acks(&buf[..40]), [(1, 0)]);
    }
}
