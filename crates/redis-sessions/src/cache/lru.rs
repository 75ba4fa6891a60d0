//! A least-recently-used map bounded by entries and by bytes: a slab of nodes in a doubly
//! linked list (most recent at the head) and a hash map from key to slot.

use std::collections::HashMap;
use std::sync::Arc;

const NIL: usize = usize::MAX;

struct Node<V> {
    key: Arc<str>,
    value: V,
    size: usize,
    prev: usize,
    next: usize,
}

/// The map. `V` is the cached value; each entry weighs `size` bytes against the bytes bound.
pub(crate) struct Lru<V> {
    map: HashMap<Arc<str>, usize>,
    nodes: Vec<Option<Node<V>>>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<V> Lru<V> {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Lru<V> {
        Lru {
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The value of `key`, made the most recently used.
    pub(crate) fn get(&mut self, key: &str) -> Option<&V> {
        let slot = *self.map.get(key)?;
        self.unlink(slot);
        self.push_front(slot);
        self.nodes[slot].as_ref().map(|n| &n.value)
    }

    /// Inserts (or replaces) `key`; returns how many other entries were evicted to stay within
    /// the bounds. An entry larger than the bytes bound is not inserted (and any old value of
    /// the key is dropped).
    pub(crate) fn insert(&mut self, key: &str, value: V, size: usize) -> usize {
        self.remove(key);
        if size > self.max_bytes || self.max_entries == 0 {
            return 0;
        }
        let mut evicted = 0;
        while self.map.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            if !self.pop_back() {
                break;
            }
            evicted += 1;
        }
        let key: Arc<str> = Arc::from(key);
        let node = Node {
            key: Arc::clone(&key),
            value,
            size,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot] = Some(node);
                slot
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.push_front(slot);
        self.map.insert(key, slot);
        self.bytes += size;
        evicted
    }

    /// Removes `key`; `true` when it was there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let Some(slot) = self.map.remove(key) else {
            return false;
        };
        self.unlink(slot);
        if let Some(node) = self.nodes[slot].take() {
            self.bytes -= node.size;
        }
        self.free.push(slot);
        true
    }

    /// Removes `key` and returns its value.
    #[cfg_attr(
        not(any(
            feature = "tower-sessions-014",
            feature = "tower-sessions-015",
            feature = "actix"
        )),
        allow(dead_code, reason = "only the adapters' merge bases are taken")
    )]
    pub(crate) fn take(&mut self, key: &str) -> Option<V> {
        let slot = self.map.remove(key)?;
        self.unlink(slot);
        self.free.push(slot);
        let node = self.nodes[slot].take()?;
        self.bytes -= node.size;
        Some(node.value)
    }

    /// Drops every entry; the number dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.map.len();
        self.map.clear();
        self.nodes.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.bytes = 0;
        n
    }

    fn pop_back(&mut self) -> bool {
        if self.tail == NIL {
            return false;
        }
        let key = match &self.nodes[self.tail] {
            Some(node) => Arc::clone(&node.key),
            None => return false,
        };
        self.remove(&key)
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = match &self.nodes[slot] {
            Some(n) => (n.prev, n.next),
            None => return,
        };
        match prev {
            NIL => self.head = next,
            p => {
                if let Some(n) = self.nodes[p].as_mut() {
                    n.next = next;
                }
            }
        }
        match next {
            NIL => self.tail = prev,
            n => {
                if let Some(node) = self.nodes[n].as_mut() {
                    node.prev = prev;
                }
            }
        }
    }

    fn push_front(&mut self, slot: usize) {
        let old_head = self.head;
        if let Some(n) = self.nodes[slot].as_mut() {
            n.prev = NIL;
            n.next = old_head;
        }
        if old_head != NIL {
            if let Some(n) = self.nodes[old_head].as_mut() {
                n.prev = slot;
            }
        }
        self.head = slot;
        if self.tail == NIL {
            self.tail = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn evicts_the_least_recently_used_entry_first() {
        let mut lru = Lru::new(2, 1000);
        assert_eq!(lru.insert("a", 1, 10), 0);
        assert_eq!(lru.insert("b", 2, 10), 0);
        assert_eq!(lru.get("a"), Some(&1)); // a is now the most recent
        assert_eq!(lru.insert("c", 3, 10), 1);
        assert_eq!(lru.get("b"), None);
        assert_eq!(lru.get("a"), Some(&1));
        assert_eq!(lru.get("c"), Some(&3));
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn stays_within_the_bytes_bound() {
        let mut lru = Lru::new(100, 25);
        lru.insert("a", 1, 10);
        lru.insert("b", 2, 10);
        assert_eq!(lru.insert("c", 3, 10), 1);
        assert_eq!(lru.bytes(), 20);
        assert_eq!(lru.get("a"), None);
        // Larger than the whole bound: not cached, and the key's old value is gone.
        assert_eq!(lru.insert("b", 4, 26), 0);
        assert_eq!(lru.get("b"), None);
        assert_eq!(lru.bytes(), 10);
    }

    #[test]
    fn replacing_and_removing_keep_the_accounting() {
        let mut lru = Lru::new(3, 100);
        lru.insert("a", 1, 10);
        lru.insert("a", 2, 30);
        assert_eq!((lru.len(), lru.bytes()), (1, 30));
        assert!(lru.remove("a"));
        assert!(!lru.remove("a"));
        assert_eq!((lru.len(), lru.bytes()), (0, 0));
        for (i, k) in ["x", "y", "z", "w"].iter().enumerate() {
            lru.insert(k, i, 1);
        }
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.get("x"), None);
        assert_eq!(lru.clear(), 3);
        assert_eq!(lru.get("w"), None);
    }
}
