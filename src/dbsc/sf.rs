//! The few RFC 9651 structured fields DBSC uses: the strings the server
//! sends (in `Secure-Session-Registration` and `Secure-Session-Challenge`),
//! and the string items it receives (`Secure-Session-Response`,
//! `Sec-Secure-Session-Id`), whose parameters are read and ignored.

/// A structured field that is not what it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a structured-field string item (RFC 9651): {0}")]
pub struct SfError(&'static str);

/// `value` as an sf-string (RFC 9651 §4.1.6), or `None` if it holds a
/// character outside printable ASCII, which no sf-string can carry.
#[must_use]
pub fn serialize_string(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if !(' '..='~').contains(&c) {
            return None;
        }
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// The string of a field whose value must be one sf-string item, its
/// parameters (if any) read by the RFC's rules and ignored (RFC 9651
/// §4.2, parsing an item).
///
/// # Errors
/// [`SfError`] for anything else: another type of item, a list, bad
/// escapes, characters outside printable ASCII, malformed parameters,
/// trailing input.
pub fn parse_string_item(field: &str) -> Result<String, SfError> {
    let mut input = Input { rest: field.trim_start_matches(' ').as_bytes() };
    let Bare::String(value) = input.bare_item()? else {
        return Err(SfError("the item is not a string"));
    };
    input.parameters()?;
    if !input.rest.iter().all(|&b| b == b' ') {
        return Err(SfError("trailing characters"));
    }
    Ok(value)
}

/// A bare item, as far as this parser needs to know it.
enum Bare {
    String(String),
    Other,
}

struct Input<'a> {
    rest: &'a [u8],
}

impl Input<'_> {
    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    /// §4.2.3.1.
    fn bare_item(&mut self) -> Result<Bare, SfError> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number().map(|()| Bare::Other),
            Some(b'"') => self.string().map(Bare::String),
            Some(b'*' | b'a'..=b'z' | b'A'..=b'Z') => {
                self.token();
                Ok(Bare::Other)
            }
            Some(b':') => self.byte_sequence().map(|()| Bare::Other),
            Some(b'?') => self.boolean().map(|()| Bare::Other),
            Some(b'@') => {
                self.bump();
                if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
                    return Err(SfError("a date is not an integer"));
                }
                self.number_of(true).map(|()| Bare::Other)
            }
            Some(b'%') => self.display_string().map(|()| Bare::Other),
            _ => Err(SfError("not an item")),
        }
    }

    /// §4.2.3.2: parameters, each key once or more (the last wins), values
    /// bare items or `true`.
    fn parameters(&mut self) -> Result<(), SfError> {
        while self.peek() == Some(b';') {
            self.bump();
            while self.peek() == Some(b' ') {
                self.bump();
            }
            self.key()?;
            if self.peek() == Some(b'=') {
                self.bump();
                self.bare_item()?;
            }
        }
        Ok(())
    }

    /// §4.2.3.3.
    fn key(&mut self) -> Result<(), SfError> {
        if !matches!(self.peek(), Some(b'*' | b'a'..=b'z')) {
            return Err(SfError("a key starts with a lowercase letter or *"));
        }
        while matches!(self.peek(), Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')) {
            self.bump();
        }
        Ok(())
    }

    /// §4.2.4: an integer (at most 15 digits) or a decimal (at most 12
    /// integer digits, 1 to 3 fractional ones).
    fn number(&mut self) -> Result<(), SfError> {
        self.number_of(false)
    }

    fn number_of(&mut self, integer_only: bool) -> Result<(), SfError> {
        if self.peek() == Some(b'-') {
            self.bump();
        }
        let (mut digits, mut fraction, mut decimal) = (0usize, 0usize, false);
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(SfError("a number has no digits"));
        }
        loop {
            match self.peek() {
                Some(b'0'..=b'9') => {
                    self.bump();
                    if decimal {
                        fraction += 1;
                    } else {
                        digits += 1;
                    }
                }
                Some(b'.') if !decimal && !integer_only => {
                    if digits > 12 {
                        return Err(SfError("a decimal has more than 12 integer digits"));
                    }
                    self.bump();
                    decimal = true;
                }
                _ => break,
            }
            if (!decimal && digits > 15) || fraction > 3 {
                return Err(SfError("a number is too long"));
            }
        }
        if decimal && fraction == 0 {
            return Err(SfError("a decimal ends with ."));
        }
        Ok(())
    }

    /// §4.2.5.
    fn string(&mut self) -> Result<String, SfError> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some(b'\\') => match self.bump() {
                    Some(c @ (b'"' | b'\\')) => out.push(char::from(c)),
                    _ => return Err(SfError("a string escapes something other than \" or \\")),
                },
                Some(b'"') => return Ok(out),
                Some(c @ 0x20..=0x7e) => out.push(char::from(c)),
                Some(_) => return Err(SfError("a string holds a character outside printable ASCII")),
                None => return Err(SfError("a string is not closed")),
            }
        }
    }

    /// §4.2.6.
    fn token(&mut self) {
        self.bump();
        while matches!(
            self.peek(),
            Some(
                b'!'
                | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
                | b':'
                | b'/'
                | b'0'..=b'9'
                | b'a'..=b'z'
                | b'A'..=b'Z',
            )
        ) {
            self.bump();
        }
    }

    /// §4.2.7: base64 between colons, which must decode. As the RFC asks,
    /// missing `=` padding and non-zero pad bits are let through; a length
    /// no encoding has, or `=` anywhere but a correct padding, is refused.
    fn byte_sequence(&mut self) -> Result<(), SfError> {
        self.bump();
        let (mut data, mut padding) = (0usize, 0usize);
        loop {
            match self.bump() {
                Some(b':') => break,
                Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/') if padding == 0 => data += 1,
                Some(b'=') => padding += 1,
                _ => return Err(SfError("a byte sequence is not base64 between colons")),
            }
        }
        // 0, 2 or 3 characters in the last group; padding, if any, goes in
        // that group (missing padding is synthesized, as the RFC says).
        let last = data % 4;
        if last == 1 || (padding != 0 && (last == 0 || last + padding > 4)) {
            return Err(SfError("a byte sequence does not decode as base64"));
        }
        Ok(())
    }

    /// §4.2.8.
    fn boolean(&mut self) -> Result<(), SfError> {
        self.bump();
        match self.bump() {
            Some(b'0' | b'1') => Ok(()),
            _ => Err(SfError("a boolean is not ?0 or ?1")),
        }
    }

    /// §4.2.10: `%"`, printable ASCII and lowercase `%xx` escapes of UTF-8, `"`.
    fn display_string(&mut self) -> Result<(), SfError> {
        self.bump();
        if self.bump() != Some(b'"') {
            return Err(SfError("a display string does not open with %\""));
        }
        let mut bytes = Vec::new();
        loop {
            match self.bump() {
                Some(b'%') => {
                    let hex = |c: Option<u8>| match c {
                        Some(c @ b'0'..=b'9') => Some(c - b'0'),
                        Some(c @ b'a'..=b'f') => Some(c - b'a' + 10),
                        _ => None,
                    };
                    let (Some(high), Some(low)) = (hex(self.bump()), hex(self.bump())) else {
                        return Err(SfError("a display string has a bad escape"));
                    };
                    bytes.push(high << 4 | low);
                }
                Some(b'"') => {
                    return std::str::from_utf8(&bytes)
                        .map(drop)
                        .map_err(|_| SfError("a display string is not UTF-8"));
                }
                Some(c @ 0x20..=0x7e) => bytes.push(c),
                _ => return Err(SfError("a display string is not closed or holds a control character")),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_only_printable_ascii_is_sent() {
        for value in ["", "cv", "a \"quoted\" \\ value", "~ !"] {
            let field = serialize_string(value).unwrap();
            assert_eq!(parse_string_item(&field).unwrap(), value, "{field}");
        }
        assert_eq!(serialize_string(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        for bad in ["tab\t", "new\nline", "é", "\u{7f}"] {
            assert_eq!(serialize_string(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_string_item_may_carry_parameters_of_every_kind_which_are_ignored() {
        let with =
            r#"  "abc";id="s 1";n=-12;d=1.5;t=tok/en:x;b=:aGk=:;f=?0;k;dt=@1659578233;ds=%"f%c3%bc"  "#;
        assert_eq!(parse_string_item(with).unwrap(), "abc");
        assert_eq!(parse_string_item(r#""x";  a=1"#).unwrap(), "x");
        // The limits are inclusive (RFC 9651 §3.3.1, §3.3.2): 15 integer
        // digits, and 12 before a decimal's point and 3 after it.
        let longest = r#""x";i=-123456789012345;d=123456789012.123"#;
        assert_eq!(parse_string_item(longest).unwrap(), "x");
        // Byte sequences: empty, padded, unpadded or short of padding, and
        // with non-zero pad bits are all accepted (§4.2.7 says parsers
        // SHOULD NOT fail on the last two).
        for bytes in
            [":", ":aGk=", ":aGk", ":aGVsbG8=", ":aGVsbA==", ":aGVsbA", ":aGVsbA=", ":aGl=", ":aGVsbB=="]
        {
            assert_eq!(parse_string_item(&format!(r#""x";b={bytes}:"#)).unwrap(), "x", "{bytes}");
        }
    }

    #[test]
    fn anything_but_one_well_formed_string_item_is_refused() {
        for bad in [
            "",
            "abc",
            "12",
            "?1",
            r#""abc"#,
            r#""a\b""#,
            "\"a\u{7f}\"",
            "\"é\"",
            r#""a", "b""#,
            r#"("a")"#,
            r#""a";"#,
            r#""a";A=1"#,
            r#""a";a=1.2345"#,
            r#""a";a=1."#,
            // One point at most, and none in a date (an integer).
            r#""a";a=1.2.3"#,
            r#""a";a=@1.5"#,
            r#""a";a=1234567890123456"#,
            r#""a";a=1234567890123.1"#,
            r#""a";a=:aGk"#,
            // Byte sequences that do not decode (RFC 9651 §4.2.7, step 7).
            r#""a";b=:a:"#,
            r#""a";b=:ab=c:"#,
            r#""a";b=:=:"#,
            r#""a";b=:aGk==:"#,
            r#""a";b=:aGVsbG8==:"#,
            r#""a";b=:aGVs=:"#,
            r#""a";a=?2"#,
            r#""a";a=%"%C3%BC""#,
            r#""a";a=%"%ff""#,
            r#""a";a=@x"#,
            r#""a" x"#,
            "\"a\"\t",
        ] {
            assert!(parse_string_item(bad).is_err(), "{bad:?}");
        }
    }
}
