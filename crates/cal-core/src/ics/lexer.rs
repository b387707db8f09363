//! The syntax of an iCalendar body (RFC 5545 §3.1, §3.4, §3.6): decoding,
//! line unfolding, content lines with their parameters, and how BEGIN/END
//! nest. It knows no property's meaning; values stay text.
//!
//! Everything borrows from the body where it can, so reading a large
//! calendar never holds it twice (see [`logical_lines`]).

use std::borrow::Cow;

use super::import::Rejection;
use super::values::unescape;

/// One unfolded content line with the physical line it started on. Name,
/// parameters and value borrow from the body unless the line was folded
/// (or a name is not upper case, or a parameter value quoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ContentLine<'a> {
    pub(super) line: usize,
    pub(super) name: Cow<'a, str>,
    pub(super) params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(super) value: Cow<'a, str>,
}

impl ContentLine<'_> {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }

    pub(super) fn into_owned(self) -> ContentLine<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        ContentLine {
            line: self.line,
            name: own(self.name),
            params: self.params.into_iter().map(|(k, v)| (own(k), own(v))).collect(),
            value: own(self.value),
        }
    }
}

/// `s` in ASCII upper case, borrowed when it already is.
fn upper(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_lowercase()) { Cow::Owned(s.to_ascii_uppercase()) } else { Cow::Borrowed(s) }
}

/// A BEGIN/END value as a component name: trimmed, upper case.
fn component_name<'a>(value: &Cow<'a, str>) -> Cow<'a, str> {
    match value {
        Cow::Borrowed(s) => upper(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_ascii_uppercase()),
    }
}

/// Decodes (invalid UTF-8 replaced, never a panic), refusing binary bodies.
pub(super) fn decode(body: &[u8]) -> Result<Cow<'_, str>, Rejection> {
    if let Some(pos) = body.iter().take(64 * 1024).position(|&b| b == 0) {
        let line = body[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Rejection::Binary { line });
    }
    Ok(String::from_utf8_lossy(body))
}

/// The logical (unfolded) lines of `text` with the physical line each starts
/// on, produced one at a time: an unfolded line borrows from `text`, only a
/// folded one is copied, so a large body is never held twice.
///
/// Unfolding (RFC 5545 §3.1) joins a line with every following line that
/// starts with a space or tab, that one character dropped. Empty lines are
/// not content lines: between a line and its continuation they are skipped
/// (SEMANTICS.md §6; some exporters write a blank line inside a fold).
fn logical_lines(text: &str) -> impl Iterator<Item = (usize, Cow<'_, str>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate().peekable();
    std::iter::from_fn(move || loop {
        let (i, line) = raw.next()?;
        if line.trim().is_empty() || line.starts_with([' ', '\t']) {
            // Blank, or a continuation with nothing before it to continue.
            continue;
        }
        let mut logical = Cow::Borrowed(line);
        while let Some((_, next)) = raw.peek() {
            if next.is_empty() {
                raw.next();
                continue;
            }
            let Some(rest) = next.strip_prefix([' ', '\t']) else { break };
            logical.to_mut().push_str(rest);
            raw.next();
        }
        return Some((i + 1, logical));
    })
}

/// The content lines of `text`, after checking that it starts as a calendar.
pub(super) fn content_lines(text: &str) -> Result<impl Iterator<Item = ContentLine<'_>> + '_, Rejection> {
    let mut lines = logical_lines(text).peekable();
    let Some((first_line, first)) = lines.peek() else { return Err(Rejection::Empty) };
    if !first.trim().eq_ignore_ascii_case("BEGIN:VCALENDAR") {
        let found: String = first.chars().take(40).filter(|c| !c.is_control()).collect();
        let binary = first.chars().filter(|c| *c == char::REPLACEMENT_CHARACTER || c.is_control()).count() * 4 > first.chars().count().max(1);
        return Err(if binary { Rejection::Binary { line: *first_line } } else { Rejection::NotCalendar { line: *first_line, found } });
    }
    Ok(lines.filter_map(|(line, text)| match text {
        Cow::Borrowed(text) => parse_line(line, text),
        Cow::Owned(text) => parse_line(line, &text).map(ContentLine::into_owned),
    }))
}

/// `NAME *(;PARAM=VALUE[,VALUE]) : VALUE`, with quoted parameter values.
/// A line without a colon is not a content line and is dropped here; the
/// component that holds it notices what it lacks.
fn parse_line(line: usize, text: &str) -> Option<ContentLine<'_>> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b';' && bytes[i] != b':' {
        i += 1;
    }
    let name = upper(text[..i].trim());
    if name.is_empty() || i >= bytes.len() {
        return None;
    }
    let mut params = Vec::new();
    while bytes[i] == b';' {
        i += 1;
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b':' && bytes[i] != b';' {
            i += 1;
        }
        let key = upper(text[key_start..i].trim());
        let mut value = Cow::Borrowed("");
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            // Unquoted parts and the commas between them are the text as it
            // stands; only a quoted part (quotes dropped) needs a copy.
            let value_start = i;
            let mut quoted: Option<String> = None;
            loop {
                if i < bytes.len() && bytes[i] == b'"' {
                    let end = text[i + 1..].find('"').map(|p| i + 1 + p)?;
                    quoted.get_or_insert_with(|| text[value_start..i].to_owned()).push_str(&text[i + 1..end]);
                    i = end + 1;
                } else {
                    let start = i;
                    while i < bytes.len() && !matches!(bytes[i], b',' | b';' | b':') {
                        i += 1;
                    }
                    if let Some(q) = quoted.as_mut() {
                        q.push_str(&text[start..i]);
                    }
                }
                if i < bytes.len() && bytes[i] == b',' {
                    if let Some(q) = quoted.as_mut() {
                        q.push(',');
                    }
                    i += 1;
                } else {
                    break;
                }
            }
            value = match quoted {
                Some(q) => Cow::Owned(q),
                None => Cow::Borrowed(&text[value_start..i]),
            };
        }
        params.push((key, value));
        if i >= bytes.len() {
            return None;
        }
    }
    if bytes[i] != b':' {
        return None;
    }
    Some(ContentLine { line, name, params, value: Cow::Borrowed(&text[i + 1..]) })
}

/// A component with its properties and sub-components.
#[derive(Clone, Debug, Default)]
pub(super) struct Component<'a> {
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) props: Vec<ContentLine<'a>>,
    pub(super) children: Vec<Component<'a>>,
}

impl<'a> Component<'a> {
    pub(super) fn prop(&self, name: &str) -> Option<&ContentLine<'a>> {
        self.props.iter().find(|p| p.name == name)
    }

    pub(super) fn props<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s ContentLine<'a>> + 's {
        self.props.iter().filter(move |p| p.name == name)
    }

    pub(super) fn text(&self, name: &str) -> Option<String> {
        self.prop(name).map(|p| unescape(&p.value))
    }
}

/// Where a content line falls in the component structure.
pub(super) enum Step<'a> {
    /// `BEGIN` of this component, now the innermost open one.
    Begin(Cow<'a, str>),
    /// `END` of this component, closed now.
    End(Cow<'a, str>),
    /// A property of the innermost open component.
    Prop,
    /// An `END` with nothing open, or a property outside any component.
    Ignored,
}

/// The open components (names only) while content lines go by; every
/// BEGIN must be closed by the END of the same name.
#[derive(Default)]
pub(super) struct Nesting<'a> {
    open: Vec<Cow<'a, str>>,
    /// The physical line of the last content line seen.
    last_line: usize,
}

impl<'a> Nesting<'a> {
    pub(super) fn step(&mut self, l: &ContentLine<'a>) -> Result<Step<'a>, Rejection> {
        self.last_line = l.line;
        match &*l.name {
            "BEGIN" => {
                let name = component_name(&l.value);
                self.open.push(name.clone());
                Ok(Step::Begin(name))
            }
            "END" => {
                let name = component_name(&l.value);
                let Some(top) = self.open.pop() else { return Ok(Step::Ignored) };
                if top != name {
                    return Err(Rejection::Mismatched { line: l.line, found: name.into_owned(), open: top.into_owned() });
                }
                Ok(Step::End(top))
            }
            _ if self.open.is_empty() => Ok(Step::Ignored),
            _ => Ok(Step::Prop),
        }
    }

    /// How many components are open.
    pub(super) fn depth(&self) -> usize {
        self.open.len()
    }

    /// At the end of the body: every VCALENDAR must be closed.
    pub(super) fn finish(&self) -> Result<(), Rejection> {
        match self.open.first() {
            Some(open) => Err(Rejection::Truncated { line: self.last_line, open: open.to_string() }),
            None => Ok(()),
        }
    }
}

