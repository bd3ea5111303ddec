//! Incremental UTF-8 validation for text messages that arrive in pieces.

/// Validates a byte stream as UTF-8 piece by piece, failing at the first
/// invalid byte even if a code point is split between pieces.
///
/// Each piece is checked with `simdutf8`'s `compat` validator; only an
/// incomplete code point at the end of a piece (at most 3 bytes) is carried
/// over to the next.
#[derive(Clone, Debug, Default)]
pub(crate) struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The bytes given to a [`Utf8Validator`] are not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub const fn new() -> Utf8Validator {
        Utf8Validator {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Forgets any carried-over bytes, starting a new stream.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// Checks the next piece. Fails as soon as the bytes seen so far cannot
    /// be the start of valid UTF-8.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let have = self.pending_len as usize;
            let take = (4 - have).min(piece.len());
            let mut tmp = [0u8; 4];
            tmp[..have].copy_from_slice(&self.pending[..have]);
            tmp[have..have + take].copy_from_slice(&piece[..take]);
            let n = have + take;
            match simdutf8::compat::from_utf8(&tmp[..n]) {
                Ok(_) => {
                    self.pending_len = 0;
                    piece = &piece[take..];
                }
                Err(e) if e.valid_up_to() >= have => {
                    // The carried code point completed; continue after it.
                    self.pending_len = 0;
                    piece = &piece[e.valid_up_to() - have..];
                }
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    // Still incomplete: the piece was too short to finish it.
                    self.pending[have..n].copy_from_slice(&piece[..take]);
                    self.pending_len = n as u8;
                    return Ok(());
                }
            }
        }
        match simdutf8::compat::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &piece[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the stream: fails if it stopped inside a code point. Resets the
    /// validator either way.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let incomplete = self.pending_len > 0;
        self.pending_len = 0;
        if incomplete { Err(InvalidUtf8) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn fails_exactly_when_the_prefix_is_broken(
            text in any::<String>(),
            noise in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut bytes = text.into_bytes();
            if !bytes.is_empty() {
                for (at, b) in noise {
                    let i = at % bytes.len();
                    bytes[i] = b;
                }
            }
            let mut points: Vec<usize> = cuts.iter().map(|&x| x % (bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            let mut v = Utf8Validator::new();
            let mut failed = false;
            for w in points.windows(2) {
                let r = v.feed(&bytes[w[0]..w[1]]);
                // The prefix so far is broken iff std sees an error that more
                // bytes cannot fix.
                let broken = matches!(
                    std::str::from_utf8(&bytes[..w[1]]),
                    Err(e) if e.error_len().is_some()
                );
                prop_assert_eq!(r.is_err(), broken);
                if broken {
                    failed = true;
                    break;
                }
            }
            if !failed {
                prop_assert_eq!(v.finish().is_ok(), std::str::from_utf8(&bytes).is_ok());
            }
        }
    }
}
