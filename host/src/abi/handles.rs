//! Handles a guest holds during one invocation: databases and storages it opened, files
//! it is reading.
//!
//! Ids start at 1 (so 0 is never a valid handle, unlike Taubyte's) and are never reused
//! within the invocation, so a stale id cannot reach a newer object. Each table makes at
//! most its capacity of handles per invocation: a guest that opens in a loop gets an errno
//! past it instead of growing host memory without end.

/// One table of handles.
pub struct Handles<T> {
    items: Vec<Option<T>>,
    cap: usize,
}

impl<T> Handles<T> {
    /// A table that makes at most `cap` handles.
    pub const fn new(cap: usize) -> Self {
        Self {
            items: Vec::new(),
            cap,
        }
    }

    /// A new handle for `item`, or `None` when the table has made its capacity.
    pub fn insert(&mut self, item: T) -> Option<u32> {
        if self.items.len() >= self.cap {
            return None;
        }
        self.items.push(Some(item));
        Some(self.items.len() as u32)
    }

    fn index(id: i32) -> Option<usize> {
        (id as u32 as usize).checked_sub(1)
    }

    pub fn get(&self, id: i32) -> Option<&T> {
        self.items.get(Self::index(id)?)?.as_ref()
    }

    pub fn get_mut(&mut self, id: i32) -> Option<&mut T> {
        self.items.get_mut(Self::index(id)?)?.as_mut()
    }

    /// What the open handles hold.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().flatten()
    }

    /// Closes handle `id`, handing back what it held.
    pub fn remove(&mut self, id: i32) -> Option<T> {
        self.items.get_mut(Self::index(id)?)?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_are_never_reused_and_stop_at_the_cap() {
        let mut handles = Handles::new(2);
        assert_eq!(handles.insert("a"), Some(1));
        assert_eq!(handles.get(1), Some(&"a"));
        assert_eq!(handles.get(0), None);
        assert_eq!(handles.get(-1), None);
        assert_eq!(handles.remove(1), Some("a"));
        assert_eq!(handles.get(1), None, "closed");
        assert_eq!(handles.insert("b"), Some(2), "1 is not handed out again");
        assert_eq!(handles.insert("c"), None, "past the cap");
        *handles.get_mut(2).unwrap() = "B";
        assert_eq!(handles.get(2), Some(&"B"));
    }
}
