//! Which URLs the suite may fetch from inside its network: the one SSRF
//! policy that `connectIcs` applies when a provider gives a calendar URL and
//! the poller applies before every request and to every redirect target
//! (SEMANTICS.md §6). Pure: parsing and address arithmetic, no DNS.
//!
//! A URL passes [`check_url`] if it is `http` or `https`, carries no user
//! name or password, and names a host that is neither a local name nor an
//! IP address outside the public Internet ([`is_public_ip`]). A name's
//! addresses are unknown here: the poller resolves it once and refuses it
//! unless every address passes [`is_public_ip`], then connects to exactly
//! those addresses.
//!
//! Errors never quote the URL, whose path or query is the calendar's secret;
//! they name the host at most.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Why a URL is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute URL.
    #[error("is not an absolute URL")]
    NotAUrl,
    /// A scheme other than `http` or `https`.
    #[error("uses {scheme}:, not http or https")]
    Scheme {
        /// The scheme, lower-cased.
        scheme: String,
    },
    /// No host to fetch from.
    #[error("names no host")]
    NoHost,
    /// `user:password@` before the host.
    #[error("carries a user name or password")]
    Credentials,
    /// A name for this machine or the local network ([`is_local_name`]).
    #[error("names the local host {host}")]
    LocalName {
        /// The host as the URL has it.
        host: String,
    },
    /// An IP address outside the public Internet ([`is_public_ip`]).
    #[error("names the local or private network address {host}")]
    PrivateAddress {
        /// The host as the URL has it (an IPv6 address bracketed).
        host: String,
    },
}

/// A URL that passed [`check_url`], as the WHATWG parser normalized it
/// (lower-cased scheme and host, odd IPv4 spellings such as `0x7f.1` as
/// dotted quads, default port dropped).
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedUrl(Url);

impl CheckedUrl {
    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL, owned.
    pub fn into_url(self) -> Url {
        self.0
    }
}

impl std::fmt::Debug for CheckedUrl {
    /// Scheme and host only: the rest may be a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckedUrl({}://{}/…)", self.0.scheme(), self.0.host_str().unwrap_or_default())
    }
}

/// Parses `input` and checks it against the policy of this module: `http`
/// or `https`, no credentials, a host that is not local ([`is_local_name`])
/// and, if an IP address, public ([`is_public_ip`]).
pub fn check_url(input: &str) -> Result<CheckedUrl, UrlError> {
    let url = match Url::parse(input) {
        Ok(url) => url,
        Err(url::ParseError::EmptyHost) => return Err(UrlError::NoHost),
        Err(_) => return Err(UrlError::NotAUrl),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme { scheme: url.scheme().to_owned() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let named = || url.host_str().unwrap_or_default().to_owned();
    match url.host() {
        None | Some(Host::Domain("")) => return Err(UrlError::NoHost),
        Some(Host::Domain(name)) if is_local_name(name) => return Err(UrlError::LocalName { host: named() }),
        Some(Host::Ipv4(ip)) if !is_public_ip(IpAddr::V4(ip)) => return Err(UrlError::PrivateAddress { host: named() }),
        Some(Host::Ipv6(ip)) if !is_public_ip(IpAddr::V6(ip)) => return Err(UrlError::PrivateAddress { host: named() }),
        Some(_) => {}
    }
    Ok(CheckedUrl(url))
}

/// Whether a host name stands for this machine or the local network, by
/// name alone: `localhost` and names under it, `localhost.localdomain`, and
/// the special-use domains `.local` (multicast DNS), `.internal` and
/// `.home.arpa`. Case and a trailing dot do not matter.
pub fn is_local_name(host: &str) -> bool {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let under = |domain: &str| name == domain || name.ends_with(&format!(".{domain}"));
    name.is_empty() || under("localhost") || name == "localhost.localdomain" || under("local") || under("internal") || under("home.arpa")
}

/// Whether `ip` is an address of the public Internet, the only kind the
/// suite connects to on a provider's behalf.
///
/// IPv4: not "this network" 0/8, private 10/8, 172.16/12, 192.168/16,
/// carrier-grade NAT 100.64/10, loopback 127/8, link-local 169.254/16 (the
/// cloud metadata service among them), IETF protocol assignments
/// 192.0.0/24, documentation 192.0.2/24, 198.51.100/24, 203.0.113/24, the
/// old 6to4 relays 192.88.99/24, benchmarking 198.18/15, multicast 224/4,
/// reserved 240/4 and broadcast.
///
/// IPv6: global unicast `2000::/3` only, less the documentation ranges
/// `2001:db8::/32` and `3fff::/20` and the IETF protocol assignments
/// `2001::/23` (Teredo `2001::/32` among them), and with 6to4 `2002::/16`
/// judged by the IPv4 address it embeds; outside it, only an IPv4-mapped
/// address (`::ffff:a.b.c.d`) or one of the well-known NAT64 prefix
/// (`64:ff9b::a.b.c.d`), judged by its IPv4 address. So the unspecified
/// and loopback addresses, IPv4-compatible `::a.b.c.d`, the local-use NAT64
/// prefix `64:ff9b:1::/48`, unique-local `fc00::/7`, link-local
/// `fe80::/10`, site-local `fec0::/10` and multicast `ff00::/8` are not
/// public.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = match a {
        0 | 10 | 127 => true,
        100 => (64..128).contains(&b),
        169 => b == 254,
        172 => (16..32).contains(&b),
        192 => matches!((b, c), (0, 0) | (0, 2) | (88, 99) | (168, _)),
        198 => matches!((b, c), (18 | 19, _) | (51, 100)),
        203 => (b, c) == (0, 113),
        224.. => true, // multicast 224/4, reserved 240/4, broadcast
        _ => false,
    };
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return is_public_v4(mapped);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(v4(s[6], s[7]));
    }
    if s[0] & 0xe000 != 0x2000 {
        return false; // outside global unicast 2000::/3
    }
    match s[0] {
        0x2001 => !(s[1] < 0x200 || s[1] == 0xdb8), // 2001::/23, 2001:db8::/32
        0x2002 => is_public_v4(v4(s[1], s[2])),     // 6to4
        0x3fff => s[1] >= 0x1000,                   // 3fff::/20
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_outside_the_public_internet() {
        for s in [
            // IPv4
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6
            "::",
            "::1",
            "::127.0.0.1",
            "::10.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:224.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ffff::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            "3fff::1",
            "3fff:fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
        ] {
            assert!(!is_public_ip(ip(s)), "{s} must not count as public");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.88.98.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "2001:200::1",
            "2002:808:808::1",
            "3fff:1000::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public_ip(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn hostile_urls_are_refused() {
        let private = |host: &str| Err(UrlError::PrivateAddress { host: host.into() });
        let local = |host: &str| Err(UrlError::LocalName { host: host.into() });
        let cases: Vec<(&str, Result<(), UrlError>)> = vec![
            // The three connectIcs once let through.
            ("https://[::127.0.0.1]/cal.ics", private("[::7f00:1]")),
            ("https://[64:ff9b::7f00:1]/cal.ics", private("[64:ff9b::7f00:1]")),
            ("https://224.0.0.1/cal.ics", private("224.0.0.1")),
            // Loopback, in every spelling the parser turns into one.
            ("http://127.0.0.1/", private("127.0.0.1")),
            ("http://127.1/", private("127.0.0.1")),
            ("http://0x7f.1/", private("127.0.0.1")),
            ("http://2130706433/", private("127.0.0.1")),
            ("http://0177.0.0.1/", private("127.0.0.1")),
            ("http://127.0.0.1./", private("127.0.0.1")),
            ("http://%31%32%37.0.0.1/", private("127.0.0.1")),
            ("http://[::1]/", private("[::1]")),
            ("http://[::ffff:127.0.0.1]/", private("[::ffff:7f00:1]")),
            ("http://[::ffff:7f00:1]:8080/", private("[::ffff:7f00:1]")),
            ("http://[0:0:0:0:0:ffff:127.0.0.1]/", private("[::ffff:7f00:1]")),
            // Private, shared, link-local (the metadata service), unspecified.
            ("http://10.1.2.3/", private("10.1.2.3")),
            ("http://172.16.0.1/", private("172.16.0.1")),
            ("http://192.168.0.1/", private("192.168.0.1")),
            ("http://100.64.0.1/", private("100.64.0.1")),
            ("http://169.254.169.254/latest/meta-data/", private("169.254.169.254")),
            ("http://[::ffff:169.254.169.254]/", private("[::ffff:a9fe:a9fe]")),
            ("http://[64:ff9b::a9fe:a9fe]/", private("[64:ff9b::a9fe:a9fe]")),
            ("http://[2002:a9fe:a9fe::]/", private("[2002:a9fe:a9fe::]")),
            ("http://[64:ff9b:1::a00:1]/", private("[64:ff9b:1::a00:1]")),
            ("http://0.0.0.0/", private("0.0.0.0")),
            ("http://0/", private("0.0.0.0")),
            ("http://[::]/", private("[::]")),
            // Multicast, broadcast, reserved, documentation, Teredo, local IPv6.
            ("http://239.255.255.250/", private("239.255.255.250")),
            ("http://255.255.255.255/", private("255.255.255.255")),
            ("http://240.0.0.1/", private("240.0.0.1")),
            ("http://192.0.2.10/", private("192.0.2.10")),
            ("http://198.51.100.1/", private("198.51.100.1")),
            ("http://203.0.113.1/", private("203.0.113.1")),
            ("http://[ff02::1]/", private("[ff02::1]")),
            ("http://[2001:db8::1]/", private("[2001:db8::1]")),
            ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", private("[2001:0:4136:e378:8000:63bf:3fff:fdd2]")),
            ("http://[fd00::1]/", private("[fd00::1]")),
            ("http://[fe80::1]/", private("[fe80::1]")),
            ("http://[fec0::1]/", private("[fec0::1]")),
            // Local names.
            ("http://localhost/", local("localhost")),
            ("http://LOCALHOST:8080/", local("localhost")),
            ("http://localhost./", local("localhost.")),
            ("http://a.b.localhost/", local("a.b.localhost")),
            ("http://localhost.localdomain/", local("localhost.localdomain")),
            ("http://printer.local/", local("printer.local")),
            ("http://metadata.google.internal/", local("metadata.google.internal")),
            ("http://nas.home.arpa/", local("nas.home.arpa")),
            // Schemes, credentials, no host.
            ("ftp://example.com/cal.ics", Err(UrlError::Scheme { scheme: "ftp".into() })),
            ("file:///etc/passwd", Err(UrlError::Scheme { scheme: "file".into() })),
            ("gopher://example.com/", Err(UrlError::Scheme { scheme: "gopher".into() })),
            ("webcal://example.com/cal.ics", Err(UrlError::Scheme { scheme: "webcal".into() })),
            ("javascript:alert(1)", Err(UrlError::Scheme { scheme: "javascript".into() })),
            ("https://me:pw@example.com/cal.ics", Err(UrlError::Credentials)),
            ("https://me@example.com/cal.ics", Err(UrlError::Credentials)),
            ("https://:pw@example.com/cal.ics", Err(UrlError::Credentials)),
            ("https://", Err(UrlError::NoHost)),
            ("example.com/cal.ics", Err(UrlError::NotAUrl)),
            ("http://[fe80::1%25eth0]/", Err(UrlError::NotAUrl)),
            // Public: fine.
            ("https://calendar.google.com/calendar/ical/x/basic.ics", Ok(())),
            ("http://8.8.8.8:8080/cal.ics", Ok(())),
            ("https://[2606:4700::1111]/cal.ics", Ok(())),
            ("https://[::ffff:8.8.8.8]/cal.ics", Ok(())),
            ("https://[64:ff9b::808:808]/cal.ics", Ok(())),
            ("https://localhost.example.com/cal.ics", Ok(())),
        ];
        for (input, want) in cases {
            assert_eq!(check_url(input).map(|_| ()), want, "{input}");
        }
    }

    #[test]
    fn a_checked_url_is_normalized_and_its_debug_keeps_the_secret() {
        let url = check_url("HTTPS://Calendar.Example.COM:443/private-s3cr3t/basic.ics").unwrap();
        assert_eq!(url.as_url().as_str(), "https://calendar.example.com/private-s3cr3t/basic.ics");
        assert_eq!(format!("{url:?}"), "CheckedUrl(https://calendar.example.com/…)");
        let err = check_url("ftp://example.com/private-s3cr3t").unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
