//! Fetching a calendar URL safely.
//!
//! The URL is user input fetched from inside our network, so every request
//! is treated as an SSRF attempt until proven otherwise:
//!
//! * the URL passes `cal_core::url_guard::check_url`, the policy
//!   `connectIcs` applied when the URL was given: only `http` and `https`
//!   (a `webcal://` was stored as `https://`), no credentials, no local
//!   name, no IP literal outside the public Internet;
//! * every address a name stands for is public too: our own resolver
//!   ([`VettingResolver`]) resolves it once, refuses the whole name if any
//!   address is forbidden ([`forbidden_ip`], which is
//!   `cal_core::url_guard::is_public_ip`), and hands the client exactly the
//!   vetted addresses. The client connects to those and resolves nothing
//!   again, so DNS rebinding cannot swap the address between check and
//!   connect;
//! * no proxy (a proxy would resolve for us), no `Referer` (it would carry
//!   the secret URL to a redirect's target), no decompression (a small
//!   gzip body cannot expand past the byte limit);
//! * at most [`FetchPolicy::max_redirects`] redirects, each re-checked like
//!   the first URL;
//! * timeouts to connect and for the whole exchange, body included;
//! * a byte limit enforced while the body streams in, not after.
//!
//! Errors name the host at most, never the URL: its path or query is the
//! calendar's secret. `reqwest` errors quote the URL, so they are only ever
//! kept `without_url()` and shown as our own [`FetchError`] texts.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cal_core::url_guard::{self, UrlError};
use cal_store::poll::Conditional;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ETAG, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{StatusCode, Url, redirect};

/// Bounds and permissions of one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest time for the whole exchange: redirects, headers and body.
    pub timeout: Duration,
    /// Most redirects followed.
    pub max_redirects: usize,
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Allows loopback addresses (127.0.0.0/8, ::1, `::ffff:127.0.0.0/104`)
    /// as IP literals and resolved addresses. For tests against a server on 127.0.0.1 only:
    /// [`FetchPolicy::production`] never sets it and nothing reads it from
    /// the environment. `localhost` as a name stays refused regardless.
    pub allow_loopback: bool,
}

impl FetchPolicy {
    /// What the Lambda uses.
    pub const fn production() -> Self {
        FetchPolicy {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            max_redirects: 3,
            max_bytes: 10 * 1024 * 1024,
            allow_loopback: false,
        }
    }
}

/// Why a fetch was refused before or while talking to the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Neither `http` nor `https`.
    #[error("only http and https URLs are fetched, not {scheme}:")]
    Scheme {
        /// The scheme found.
        scheme: String,
    },
    /// A user name or password before the host.
    #[error("URLs with a user name or password are not fetched")]
    Credentials,
    /// No host to fetch from.
    #[error("the URL names no host")]
    NoHost,
    /// `localhost`, a name under it, or another local name
    /// (`cal_core::url_guard::is_local_name`).
    #[error("the host {host} is local")]
    LocalName {
        /// The host.
        host: String,
    },
    /// An address outside the public Internet (see [`forbidden_ip`]).
    #[error("the host {host} is (or resolves to) a local or private network address")]
    PrivateAddress {
        /// The host (an IP literal or a name).
        host: String,
    },
    /// More redirects than [`FetchPolicy::max_redirects`].
    #[error("more than {max} redirects")]
    TooManyRedirects {
        /// The limit.
        max: usize,
    },
    /// The body is over [`FetchPolicy::max_bytes`].
    #[error("the calendar is larger than the limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
}

/// A fetch that produced no calendar. The texts are fit for the provider.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be read.
    #[error("the calendar URL cannot be read")]
    BadUrl,
    /// Refused by policy.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// The server took too long.
    #[error("{host} did not answer in time")]
    Timeout {
        /// The host.
        host: String,
    },
    /// No connection (refused, unreachable, name unknown, TLS failed).
    #[error("could not connect to {host}")]
    Connect {
        /// The host.
        host: String,
        /// What went wrong, URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// A status other than 2xx (or a 304 we did not ask for).
    #[error("{host} answered HTTP {status}")]
    Status {
        /// The host.
        host: String,
        /// The status code.
        status: u16,
    },
    /// The exchange failed otherwise (connection reset mid-body, bad framing).
    #[error("fetching from {host} failed")]
    Transport {
        /// The host.
        host: String,
        /// What went wrong, URL removed.
        #[source]
        source: reqwest::Error,
    },
}

/// A successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304 to our conditional GET.
    NotModified {
        /// A new `ETag` if the server sent one.
        etag: Option<String>,
        /// A new `Last-Modified` if the server sent one.
        last_modified: Option<String>,
    },
    /// A 2xx body, at most [`FetchPolicy::max_bytes`].
    Body {
        /// The bytes.
        body: Vec<u8>,
        /// Its `ETag`, if any.
        etag: Option<String>,
        /// Its `Last-Modified`, if any.
        last_modified: Option<String>,
    },
}

/// An HTTP client with a [`FetchPolicy`]: build it once (a Lambda's cold
/// start) and share it; its connection pool holds only vetted connections.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// Longest `ETag` / `Last-Modified` kept; a longer one is ignored.
const MAX_VALIDATOR_CHARS: usize = 1000;

impl Fetcher {
    /// A client that enforces `policy`. Fails only if TLS cannot be set up.
    pub fn new(policy: FetchPolicy) -> Result<Fetcher, reqwest::Error> {
        let allow_loopback = policy.allow_loopback;
        let max_redirects = policy.max_redirects;
        let redirects = redirect::Policy::custom(move |attempt| {
            // previous() holds every URL requested so far, the first included.
            if attempt.previous().len() > max_redirects {
                return attempt.error(Refusal::TooManyRedirects { max: max_redirects });
            }
            match check_url(attempt.url(), allow_loopback) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .referer(false)
            .redirect(redirects)
            .dns_resolver(Arc::new(VettingResolver { allow_loopback }))
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .user_agent(concat!("cal-ics-poller/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Fetcher { client, policy })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// GETs `url`. With `conditional`, sends its validators; a 304 is then
    /// [`Fetched::NotModified`]. (Comparing the body hash is the caller's.)
    pub async fn fetch(&self, url: &str, conditional: Option<Conditional<'_>>) -> Result<Fetched, FetchError> {
        let url = Url::parse(url).map_err(|_| FetchError::BadUrl)?;
        check_url(&url, self.policy.allow_loopback).map_err(|e| match e {
            Refusal::NoHost => FetchError::BadUrl,
            other => other.into(),
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut request = self.client.get(url);
        let mut asked = false;
        if let Some(c) = conditional {
            // A stored validator that is not a valid header value is skipped
            // (the full body then comes back, which is merely slower).
            if let Some(v) = c.etag.and_then(|e| HeaderValue::from_str(e).ok()) {
                request = request.header(IF_NONE_MATCH, v);
                asked = true;
            }
            if let Some(v) = c.last_modified.and_then(|e| HeaderValue::from_str(e).ok()) {
                request = request.header(IF_MODIFIED_SINCE, v);
                asked = true;
            }
        }
        let mut response = request.send().await.map_err(|e| classify(e, &host))?;
        // The host that finally answered (after redirects) names the errors.
        let host = response.url().host_str().unwrap_or_default().to_owned();
        let status = response.status();
        let validator = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_CHARS)
                .map(str::to_owned)
        };
        let (etag, last_modified) = (validator(ETAG), validator(LAST_MODIFIED));
        if status == StatusCode::NOT_MODIFIED && asked {
            return Ok(Fetched::NotModified { etag, last_modified });
        }
        if !status.is_success() {
            return Err(FetchError::Status { host, status: status.as_u16() });
        }
        let max = self.policy.max_bytes;
        // Content-Length is a hint that saves reading a body we would refuse;
        // the count below is what actually enforces the limit.
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(Refusal::TooLarge { max }.into());
        }
        let mut body = Vec::with_capacity(response.content_length().map_or(64 * 1024, |n| n as usize).min(max));
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, &host))? {
            if body.len() + chunk.len() > max {
                return Err(Refusal::TooLarge { max }.into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body { body, etag, last_modified })
    }
}

/// Maps a `reqwest` error to ours: a [`Refusal`] raised by the redirect
/// policy or the resolver is found in its chain; the URL is dropped.
fn classify(e: reqwest::Error, host: &str) -> FetchError {
    let e = e.without_url();
    if let Some(r) = cal_core::error::sources(&e).find_map(|c| c.downcast_ref::<Refusal>()) {
        return FetchError::Refused(r.clone());
    }
    let host = host.to_owned();
    if e.is_timeout() {
        FetchError::Timeout { host }
    } else if e.is_connect() {
        FetchError::Connect { host, source: e }
    } else {
        FetchError::Transport { host, source: e }
    }
}

/// The checks of the first URL and of every redirect target:
/// `cal_core::url_guard::check_url`, the same policy `connectIcs` applies,
/// with loopback IP literals let through if `allow_loopback` (tests only).
/// A name's addresses are the resolver's to check.
pub fn check_url(url: &Url, allow_loopback: bool) -> Result<(), Refusal> {
    match url_guard::check_url(url.as_str()) {
        Ok(_) => Ok(()),
        Err(UrlError::PrivateAddress { .. }) if allow_loopback && literal(url).is_some_and(is_loopback) => Ok(()),
        Err(e) => Err(match e {
            UrlError::Scheme { scheme } => Refusal::Scheme { scheme },
            UrlError::Credentials => Refusal::Credentials,
            UrlError::NotAUrl | UrlError::NoHost => Refusal::NoHost,
            UrlError::LocalName { host } => Refusal::LocalName { host },
            UrlError::PrivateAddress { host } => Refusal::PrivateAddress { host },
        }),
    }
}

/// The IP address a URL's host is, if it is one (the parser has already
/// turned odd IPv4 spellings into dotted quads; IPv6 comes bracketed).
fn literal(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).parse().ok()
}

fn check_name(host: &str) -> Result<(), Refusal> {
    if url_guard::is_local_name(host) {
        return Err(Refusal::LocalName { host: host.to_owned() });
    }
    Ok(())
}

/// Whether the poller must not connect to `ip`: any address
/// `cal_core::url_guard::is_public_ip` does not count as public, except a
/// loopback one if `allow_loopback`.
pub fn forbidden_ip(ip: IpAddr, allow_loopback: bool) -> bool {
    !(url_guard::is_public_ip(ip) || (allow_loopback && is_loopback(ip)))
}

/// 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Resolves a name once and passes on its addresses only if every one is
/// allowed; the client then connects to exactly these.
#[derive(Debug, Clone, Copy)]
pub struct VettingResolver {
    allow_loopback: bool,
}

impl VettingResolver {
    /// A resolver with `allow_loopback` as in [`FetchPolicy`].
    pub fn new(allow_loopback: bool) -> Self {
        VettingResolver { allow_loopback }
    }

    /// The vetted addresses of `host` (port 0: the client sets the URL's).
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
        check_name(host)?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        vet_addrs(host, addrs, self.allow_loopback).map_err(Into::into)
    }
}

/// `addrs` if non-empty and all allowed, else the refusal naming `host`.
pub fn vet_addrs(host: &str, addrs: Vec<SocketAddr>, allow_loopback: bool) -> Result<Vec<SocketAddr>, Refusal> {
    // One forbidden address refuses the name: a record set mixing public and
    // internal addresses is not a calendar service's.
    if addrs.is_empty() || addrs.iter().any(|a| forbidden_ip(a.ip(), allow_loopback)) {
        return Err(Refusal::PrivateAddress { host: host.to_owned() });
    }
    Ok(addrs)
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `cal_core::url_guard` tests the policy address by address; here:
    /// the poller refuses what it refuses, and `allow_loopback` lets
    /// loopback through and nothing else.
    #[test]
    fn forbidden_addresses() {
        for s in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "224.0.0.1", "::1", "::127.0.0.1", "64:ff9b::7f00:1", "fd12::1"] {
            assert!(forbidden_ip(ip(s), false), "{s} must be refused");
            assert_eq!(forbidden_ip(ip(s), false), !url_guard::is_public_ip(ip(s)), "{s}");
        }
        for s in ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(!forbidden_ip(ip(s), false), "{s} is public");
        }
        assert!(!forbidden_ip(ip("127.0.0.1"), true));
        assert!(!forbidden_ip(ip("::1"), true));
        assert!(!forbidden_ip(ip("::ffff:127.0.0.1"), true));
        assert!(forbidden_ip(ip("10.0.0.1"), true), "allow_loopback allows loopback only");
        assert!(forbidden_ip(ip("169.254.169.254"), true));
        assert!(forbidden_ip(ip("64:ff9b::7f00:1"), true), "NAT64 reaches another host's loopback");
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(check_url(&url("ftp://example.com/x"), false), Err(Refusal::Scheme { scheme: "ftp".into() }));
        assert_eq!(check_url(&url("file:///etc/passwd"), true), Err(Refusal::Scheme { scheme: "file".into() }));
        assert!(matches!(check_url(&url("http://localhost:1/x"), true), Err(Refusal::LocalName { .. })));
        assert!(matches!(check_url(&url("http://a.LOCALHOST./x"), true), Err(Refusal::LocalName { .. })));
        for s in [
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://224.0.0.1/",
        ] {
            assert!(matches!(check_url(&url(s), false), Err(Refusal::PrivateAddress { .. })), "{s}");
        }
        assert_eq!(check_url(&url("https://me:pw@calendar.example.com/x.ics"), false), Err(Refusal::Credentials));
        // The test-only allowance lets loopback through, and nothing else.
        assert_eq!(check_url(&url("http://127.0.0.1:8080/"), true), Ok(()));
        assert_eq!(check_url(&url("http://[::1]:8080/"), true), Ok(()));
        assert!(matches!(check_url(&url("http://10.0.0.1/"), true), Err(Refusal::PrivateAddress { .. })));
        assert!(matches!(check_url(&url("http://224.0.0.1/"), true), Err(Refusal::PrivateAddress { .. })));
        assert_eq!(check_url(&url("https://calendar.example.com/x.ics"), false), Ok(()));
    }

    #[test]
    fn a_name_with_any_forbidden_address_is_refused() {
        let sa = |s: &str| SocketAddr::new(ip(s), 0);
        assert!(vet_addrs("h", vec![sa("8.8.8.8"), sa("10.0.0.1")], false).is_err());
        assert!(vet_addrs("h", vec![], false).is_err());
        assert_eq!(vet_addrs("h", vec![sa("8.8.8.8")], false).unwrap(), vec![sa("8.8.8.8")]);
    }
}
