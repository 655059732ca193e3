//! Helpers shared by the fuzz targets and the seed generator.
//!
//! The stateful targets (`server_frame`, `engine_message`) read their input
//! as a sequence of records, each `op (1 byte) || len (u16, little endian)
//! || len bytes`; the last record may be short. `op` tells the target what
//! to do with the bytes (send them as a frame, patch in a request id, let
//! time pass, ...). The seed generator writes inputs in the same form.

/// Splits a fuzz input into `(op, bytes)` records (see the module docs).
pub fn records(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((&op, rest)) = data.split_first() {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (0, &[][..]),
        };
        let len = len.min(rest.len());
        out.push((op, &rest[..len]));
        data = &rest[len..];
        // Bounded so one input cannot run for seconds.
        if out.len() == 64 {
            break;
        }
    }
    out
}

/// Encodes records in the form [`records`] reads.
pub fn encode_records(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (op, bytes) in records {
        let len = u16::try_from(bytes.len()).expect("a record fits 64 KiB");
        out.push(*op);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// A seeded generator for the engine's randomness: the same input runs the
/// same way every time, so a crash reproduces.
pub struct Seeded(pub u64);

impl tether_client::Random for Seeded {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.0 >> 33) as u8;
        }
    }
}
