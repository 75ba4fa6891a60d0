//! Which cluster primary holds a key, for per-node figures: the key's hash slot
//! (CRC16-XMODEM of the key or of its `{hash tag}`, mod 16384) looked up in `CLUSTER SLOTS`.

use redis::Value;

/// Slot ranges and the primary (`host:port`) serving each.
pub(crate) struct SlotMap {
    ranges: Vec<(u16, u16, String)>,
}

impl SlotMap {
    /// Reads `CLUSTER SLOTS` through `backend`.
    pub(crate) async fn load(backend: &crate::connect::Conn) -> anyhow::Result<SlotMap> {
        let reply: Value = backend
            .command(redis::cmd("CLUSTER").arg("SLOTS"))
            .await
            .map_err(|e| anyhow::anyhow!("CLUSTER SLOTS failed: {e}"))?;
        Ok(SlotMap {
            ranges: parse(&reply),
        })
    }

    /// The primary serving `key`, or `"unknown"` while its slot is unassigned.
    pub(crate) fn node_of(&self, key: &[u8]) -> &str {
        let slot = slot_of(key);
        self.ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map_or("unknown", |(_, _, node)| node.as_str())
    }
}

fn parse(reply: &Value) -> Vec<(u16, u16, String)> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(fields) = entry else {
                return None;
            };
            let (Value::Int(start), Value::Int(end), Value::Array(primary)) =
                (fields.first()?, fields.get(1)?, fields.get(2)?)
            else {
                return None;
            };
            let host = match primary.first()? {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let Value::Int(port) = primary.get(1)? else {
                return None;
            };
            Some((
                u16::try_from(*start).ok()?,
                u16::try_from(*end).ok()?,
                format!("{host}:{port}"),
            ))
        })
        .collect()
}

/// Redis Cluster's hash slot of `key`.
pub(crate) fn slot_of(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(0) | None => key,
            Some(len) => &key[open + 1..open + 1 + len],
        },
        None => key,
    };
    crc16_xmodem(hashed) % 16_384
}

fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::slot_of;

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from Redis's `CLUSTER KEYSLOT` documentation and the CRC16 check value.
        assert_eq!(slot_of(b"123456789"), 0x31c3);
        assert_eq!(slot_of(b"somekey"), 11_058);
        assert_eq!(slot_of(b"foo{hash_tag}"), 2_515);
        assert_eq!(slot_of(b"foo{hash_tag}"), slot_of(b"hash_tag"));
        // An empty tag `{}` hashes the whole key.
        assert_ne!(slot_of(b"{}somekey"), slot_of(b""));
    }
}
