//! Salesforce record ids, and org ids in particular.
//!
//! Salesforce hands out ids in two spellings: a case-sensitive 15-character form and an
//! 18-character form whose last three characters encode the case of the first fifteen. Two
//! spellings of one org must compare equal, or an allowlist written with 15-character ids would
//! refuse the very org it names; so every id is normalised to the 18-character form on entry.

use std::fmt;

const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Why a string is not a Salesforce id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgIdError {
    #[error("must be 15 or 18 characters, got {0}")]
    Length(usize),
    #[error("may contain only ASCII letters and digits")]
    Characters,
    #[error("has an invalid case checksum (last 3 characters)")]
    Checksum,
    #[error("is not an organization id (org ids start with 00D)")]
    NotAnOrg,
}

/// Any Salesforce record id, always held in its 18-character form. Stored inline (18 ASCII
/// bytes, no allocation): every cached identity holds two of them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SalesforceId([u8; 18]);

impl SalesforceId {
    /// Accepts the 15- or the 18-character form. The 18-character form is case-insensitive, so
    /// its suffix is used to restore the case of the first fifteen characters.
    pub fn parse(raw: &str) -> Result<Self, OrgIdError> {
        let raw = raw.trim();
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(OrgIdError::Characters);
        }
        match raw.len() {
            15 => Ok(Self(with_checksum(raw.as_bytes()))),
            18 => {
                let (body, suffix) = raw.split_at(15);
                let restored = restore_case(body, suffix)?;
                Ok(Self(with_checksum(restored.as_bytes())))
            }
            n => Err(OrgIdError::Length(n)),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits ever get in (`parse`), so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The case-sensitive 15-character form, which is what a classic access token starts with.
    pub fn short(&self) -> &str {
        &self.as_str()[..15]
    }
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SalesforceId({})", self.as_str())
    }
}

/// An organization id (`00D...`), always 18 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(SalesforceId);

impl OrgId {
    pub fn parse(raw: &str) -> Result<Self, OrgIdError> {
        let id = SalesforceId::parse(raw)?;
        if !id.as_str().starts_with("00D") {
            return Err(OrgIdError::NotAnOrg);
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn short(&self) -> &str {
        self.0.short()
    }

    /// Whether `text` is exactly this org's 15-character form; compared as bytes, with no text
    /// conversion, since every request with a classic token asks it.
    pub fn has_short_form(&self, text: &str) -> bool {
        self.0 .0.get(..15) == Some(text.as_bytes())
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgId({})", self.as_str())
    }
}

impl serde::Serialize for OrgId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for OrgId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        OrgId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The standard Salesforce checksum: for each block of five characters, a five-bit mask of
/// which ones are upper-case letters, mapped into `A-Z0-5`.
/// The 18-character form of a 15-character body, built in one allocation (classic tokens
/// name their org, so this runs on every request that presents one).
fn with_checksum(body: &[u8]) -> [u8; 18] {
    let mut id = [0u8; 18];
    id[..15].copy_from_slice(&body[..15]);
    for (n, block) in body[..15].chunks(5).enumerate() {
        let mask = block
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_ascii_uppercase())
            .fold(0usize, |mask, (i, _)| mask | (1 << i));
        id[15 + n] = CHECKSUM_ALPHABET[mask];
    }
    id
}

fn restore_case(body: &str, suffix: &str) -> Result<String, OrgIdError> {
    let mut out = String::with_capacity(15);
    for (block, check) in body.as_bytes().chunks(5).zip(suffix.bytes()) {
        let mask = CHECKSUM_ALPHABET
            .iter()
            .position(|c| *c == check.to_ascii_uppercase())
            .ok_or(OrgIdError::Checksum)?;
        for (i, b) in block.iter().enumerate() {
            let upper = mask & (1 << i) != 0;
            if upper && !b.is_ascii_alphabetic() {
                return Err(OrgIdError::Checksum);
            }
            out.push(char::from(if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            }));
        }
    }
    Ok(out)
}

impl serde::Serialize for SalesforceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SalesforceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        SalesforceId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_character_id_gains_the_documented_checksum() {
        // The example from Salesforce's token response documentation.
        let id = OrgId::parse("00DB0000000TfcR").expect("valid");
        assert_eq!(id.as_str(), "00DB0000000TfcRMAS");
        assert_eq!(id.short(), "00DB0000000TfcR");
    }

    #[test]
    fn eighteen_character_id_is_case_insensitive() {
        let a = OrgId::parse("00DB0000000TfcRMAS").expect("valid");
        let b = OrgId::parse("00db0000000tfcrmas").expect("valid");
        assert_eq!(a, b);
        assert_eq!(b.as_str(), "00DB0000000TfcRMAS");
    }

    #[test]
    fn user_ids_are_not_org_ids() {
        assert_eq!(OrgId::parse("005B0000005Bk90"), Err(OrgIdError::NotAnOrg));
        assert_eq!(
            SalesforceId::parse("005B0000005Bk90")
                .expect("valid")
                .as_str(),
            "005B0000005Bk90IAC"
        );
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        assert_eq!(OrgId::parse("00D"), Err(OrgIdError::Length(3)));
        assert_eq!(OrgId::parse("00D-000000TfcR!"), Err(OrgIdError::Characters));
        assert_eq!(
            OrgId::parse("00DB0000000TfcR!!!"),
            Err(OrgIdError::Characters)
        );
        // A suffix that claims a digit is upper case cannot come from Salesforce.
        assert_eq!(
            OrgId::parse("00DB0000000TfcR555"),
            Err(OrgIdError::Checksum)
        );
    }
}
