//! A keyset-paged list: a window of at most [`WINDOW`] rows around the selection,
//! fetched [`PAGE`] at a time from the database in either direction. Every filter or
//! sort change bumps `generation`; answers carrying an older generation are dropped.

use tui_input::Input;

pub const PAGE: i64 = 200;
pub const WINDOW: usize = 600;
/// Fetch the next page when the selection comes this close to the window's edge.
const MARGIN: i64 = 40;

/// A keyset cursor: the sort value and the unique id of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorKey {
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub key: CursorKey,
    pub id: String,
}

/// Where a page starts, relative to the display order.
#[derive(Debug, Clone, PartialEq)]
pub enum Pos {
    Top,
    After(Cursor),
    Before(Cursor),
    Bottom,
}

impl Pos {
    /// Whether the page runs in display order (else it is fetched reversed).
    pub fn forward(&self) -> bool {
        matches!(self, Pos::Top | Pos::After(_))
    }
    pub fn cursor(&self) -> Option<&Cursor> {
        match self {
            Pos::After(c) | Pos::Before(c) => Some(c),
            _ => None,
        }
    }
}

/// A row of a paged list.
pub trait ListRow: Clone {
    fn cursor(&self, sort: usize) -> Cursor;
    fn id(&self) -> &str;
}

/// What a list wants fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct PageSpec {
    pub generation: u64,
    pub pos: Pos,
    pub filter: String,
    pub sort: usize,
    pub desc: bool,
    /// Also count the matching rows.
    pub count: bool,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct Paged<R> {
    pub rows: Vec<R>,
    /// Absolute index of `rows[0]`.
    pub base: i64,
    pub total: Option<i64>,
    /// Absolute index of the selected row.
    pub sel: i64,
    /// First visible row (absolute).
    pub offset: i64,
    pub at_start: bool,
    pub at_end: bool,
    pub generation: u64,
    pub filter: Input,
    pub editing: bool,
    /// Tick at which a typed filter is sent (debounce).
    pub due: Option<u64>,
    pub sort: usize,
    pub desc: bool,
    /// Requests in flight for the current generation.
    pub inflight: Vec<Pos>,
    /// A count for the current generation is on its way.
    pub counting: bool,
    /// A count that arrived before its first page (shown with that page, never
    /// beside the previous filter's rows).
    early_total: Option<i64>,
    pub loaded: bool,
}

impl<R: ListRow> Paged<R> {
    pub fn new(desc: bool) -> Self {
        Paged {
            rows: Vec::new(),
            base: 0,
            total: None,
            sel: 0,
            offset: 0,
            at_start: true,
            at_end: true,
            generation: 0,
            filter: Input::default(),
            editing: false,
            due: None,
            sort: 0,
            desc,
            inflight: Vec::new(),
            counting: false,
            early_total: None,
            loaded: false,
        }
    }

    pub fn loading(&self) -> bool {
        !self.inflight.is_empty() || self.due.is_some() || self.counting
    }

    /// Applies a count; false when it belongs to an older generation.
    pub fn counted(&mut self, generation: u64, total: i64) -> bool {
        if generation != self.generation {
            return false;
        }
        self.counting = false;
        if self.inflight.contains(&Pos::Top) || self.due.is_some() {
            self.early_total = Some(total);
        } else {
            self.total = Some(total);
        }
        true
    }

    pub fn selected(&self) -> Option<&R> {
        let i = self.sel - self.base;
        if i < 0 {
            return None;
        }
        self.rows.get(i as usize)
    }

    /// Absolute index of the last loaded row.
    fn last(&self) -> i64 {
        self.base + self.rows.len() as i64 - 1
    }

    fn spec(&mut self, pos: Pos, count: bool) -> Option<PageSpec> {
        if self.inflight.contains(&pos) {
            return None;
        }
        self.inflight.push(pos.clone());
        if count {
            self.counting = true;
        }
        Some(PageSpec {
            generation: self.generation,
            pos,
            filter: self.filter.value().trim().to_string(),
            sort: self.sort,
            desc: self.desc,
            count,
            limit: PAGE,
        })
    }

    /// Everything in flight becomes stale; the count is no longer known.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.inflight.clear();
        self.counting = false;
        self.total = None;
        self.early_total = None;
    }

    /// Starts over from the top with a new generation (filter, sort, domain, reload).
    pub fn restart(&mut self) -> Option<PageSpec> {
        self.new_generation();
        self.due = None;
        self.spec(Pos::Top, true)
    }

    /// A filter keystroke: bump the generation now, fetch when the debounce expires.
    pub fn typed(&mut self, tick: u64, debounce_ticks: u64) {
        self.new_generation();
        self.due = Some(tick + debounce_ticks);
    }

    /// On a tick: the debounced fetch, if due.
    pub fn tick(&mut self, tick: u64) -> Option<PageSpec> {
        match self.due {
            Some(t) if tick >= t => {
                self.due = None;
                self.inflight.clear();
                self.spec(Pos::Top, true)
            }
            _ => None,
        }
    }

    /// Moves the selection by `delta` rows (clamped to what is loaded) and asks for
    /// the neighbouring page when the selection nears the window's edge.
    pub fn move_by(&mut self, delta: i64, view: i64) -> Option<PageSpec> {
        if self.rows.is_empty() {
            return None;
        }
        self.sel = (self.sel + delta).clamp(self.base, self.last());
        self.scroll(view);
        self.prefetch()
    }

    fn prefetch(&mut self) -> Option<PageSpec> {
        if !self.at_end && self.last() - self.sel < MARGIN {
            let c = self.rows.last()?.cursor(self.sort);
            return self.spec(Pos::After(c), false);
        }
        if !self.at_start && self.sel - self.base < MARGIN {
            let c = self.rows.first()?.cursor(self.sort);
            return self.spec(Pos::Before(c), false);
        }
        None
    }

    pub fn top(&mut self, view: i64) -> Option<PageSpec> {
        if self.at_start {
            self.sel = self.base;
            self.scroll(view);
            None
        } else {
            self.spec(Pos::Top, true)
        }
    }

    pub fn bottom(&mut self, view: i64) -> Option<PageSpec> {
        if !self.loaded || self.inflight.contains(&Pos::Top) {
            // G before the first page arrived: fetch the end instead, dropping the top.
            self.new_generation();
            self.due = None;
            return self.spec(Pos::Bottom, true);
        }
        if self.at_end {
            self.sel = self.last().max(0);
            self.scroll(view);
            None
        } else {
            self.spec(Pos::Bottom, true)
        }
    }

    /// Keeps the selection inside the visible rows.
    pub fn scroll(&mut self, view: i64) {
        let view = view.max(1);
        if self.sel < self.offset {
            self.offset = self.sel;
        } else if self.sel >= self.offset + view {
            self.offset = self.sel - view + 1;
        }
        self.offset = self.offset.max(self.base);
    }

    /// Applies an answer; returns false when it was stale and dropped.
    pub fn apply(
        &mut self,
        generation: u64,
        pos: Pos,
        mut rows: Vec<R>,
        total: Option<i64>,
        view: i64,
    ) -> bool {
        if generation != self.generation {
            return false;
        }
        self.inflight.retain(|p| p != &pos);
        self.loaded = true;
        if let Some(t) = total {
            self.total = Some(t);
            self.counting = false;
        }
        let full = rows.len() as i64 >= PAGE;
        if !pos.forward() {
            rows.reverse();
        }
        let keep_id = self.selected().map(|r| r.id().to_string());
        match pos {
            Pos::Top => {
                if let Some(t) = self.early_total.take() {
                    self.total = Some(t);
                }
                if !full {
                    // The whole answer is here: that is the count.
                    self.total = Some(rows.len() as i64);
                    self.counting = false;
                }
                self.rows = rows;
                self.base = 0;
                self.at_start = true;
                self.at_end = !full;
                self.sel = 0;
                self.offset = 0;
                if let Some(id) = keep_id
                    && let Some(i) = self.rows.iter().position(|r| r.id() == id)
                {
                    self.sel = i as i64;
                }
            }
            Pos::Bottom => {
                let n = rows.len() as i64;
                let total = self.total.unwrap_or(n);
                self.rows = rows;
                self.base = (total - n).max(0);
                self.at_end = true;
                self.at_start = !full || self.base == 0;
                self.sel = self.last().max(0);
                self.offset = (self.sel - view + 1).max(self.base);
            }
            Pos::After(_) => {
                self.at_end = !full;
                self.rows.extend(rows);
                if self.rows.len() > WINDOW {
                    let cut = self.rows.len() - WINDOW;
                    self.rows.drain(..cut);
                    self.base += cut as i64;
                    self.at_start = false;
                }
            }
            Pos::Before(_) => {
                let n = rows.len() as i64;
                self.at_start = !full;
                rows.extend(std::mem::take(&mut self.rows));
                self.rows = rows;
                self.base = if self.at_start { 0 } else { self.base - n };
                if self.rows.len() > WINDOW {
                    self.rows.truncate(WINDOW);
                    self.at_end = false;
                }
            }
        }
        if self.rows.is_empty() {
            self.sel = 0;
            self.offset = 0;
        } else {
            self.sel = self.sel.clamp(self.base, self.last());
        }
        self.scroll(view);
        true
    }

    /// Rows visible in a viewport of `view` lines, with their absolute index.
    pub fn visible(&self, view: usize) -> impl Iterator<Item = (i64, &R)> {
        let start = (self.offset - self.base).max(0) as usize;
        self.rows
            .iter()
            .enumerate()
            .skip(start)
            .take(view)
            .map(move |(i, r)| (self.base + i as i64, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Row(i64, String);
    impl ListRow for Row {
        fn cursor(&self, _: usize) -> Cursor {
            Cursor {
                key: CursorKey::Int(self.0),
                id: self.1.clone(),
            }
        }
        fn id(&self) -> &str {
            &self.1
        }
    }
    fn rows(r: std::ops::Range<i64>) -> Vec<Row> {
        r.map(|i| Row(i, format!("id{i}"))).collect()
    }

    #[test]
    fn stale_pages_are_dropped() {
        let mut p: Paged<Row> = Paged::new(false);
        let first = p.restart().unwrap();
        p.typed(0, 2);
        assert!(p.tick(1).is_none(), "debounce not yet due");
        let second = p.tick(2).unwrap();
        assert!(second.generation > first.generation);
        assert!(!p.apply(first.generation, Pos::Top, rows(0..5), Some(5), 10));
        assert!(p.rows.is_empty());
        assert!(p.apply(second.generation, Pos::Top, rows(0..3), Some(3), 10));
        assert_eq!(p.rows.len(), 3);
        assert!(!p.loading());
    }

    #[test]
    fn pages_forward_and_jumps_to_the_end() {
        let mut p: Paged<Row> = Paged::new(false);
        let s = p.restart().unwrap();
        p.apply(s.generation, Pos::Top, rows(0..PAGE), Some(10_000), 20);
        assert!(!p.at_end);
        // Near the end of the window a forward page is requested.
        let next = p.move_by(PAGE - 10, 20).expect("prefetch");
        assert_eq!(next.pos.cursor().unwrap().id, format!("id{}", PAGE - 1));
        p.apply(s.generation, next.pos, rows(PAGE..2 * PAGE), None, 20);
        assert_eq!(p.rows.len() as i64, 2 * PAGE);
        // G: fetched reversed from the end, placed at total - n.
        let end = p.bottom(20).expect("needs a fetch");
        assert_eq!(end.pos, Pos::Bottom);
        let mut tail = rows(10_000 - PAGE..10_000);
        tail.reverse();
        p.apply(s.generation, Pos::Bottom, tail, Some(10_000), 20);
        assert_eq!(p.sel, 9_999);
        assert_eq!(p.selected().unwrap().0, 9_999);
        assert!(p.at_end && !p.at_start);
        // Going up near the window's start asks for the page before.
        let before = p.move_by(-(PAGE - 5), 20).expect("prefetch back");
        assert!(matches!(before.pos, Pos::Before(_)));
        let mut prev = rows(10_000 - 2 * PAGE..10_000 - PAGE);
        prev.reverse();
        p.apply(s.generation, before.pos, prev, None, 20);
        assert_eq!(p.base, 10_000 - 2 * PAGE);
        assert_eq!(p.selected().unwrap().0, p.sel);
    }

    #[test]
    fn g_before_the_first_page_fetches_the_end() {
        let mut p: Paged<Row> = Paged::new(false);
        let top = p.restart().unwrap();
        let end = p.bottom(20).expect("fetch the end");
        assert_eq!(end.pos, Pos::Bottom);
        assert!(
            !p.apply(top.generation, Pos::Top, rows(0..PAGE), Some(1000), 20),
            "the top page is stale"
        );
        let mut tail = rows(800..1000);
        tail.reverse();
        assert!(p.apply(end.generation, Pos::Bottom, tail, Some(1000), 20));
        assert_eq!(p.sel, 999);
    }

    #[test]
    fn counts_arrive_apart_and_stale_counts_are_dropped() {
        let mut p: Paged<Row> = Paged::new(false);
        let s = p.restart().unwrap();
        assert!(s.count && p.counting);
        // A full first page without its count: the total is not known yet.
        p.apply(s.generation, Pos::Top, rows(0..PAGE), None, 20);
        assert_eq!(p.total, None);
        assert!(p.loading(), "still counting");
        assert!(!p.counted(s.generation - 1, 5), "an older count is dropped");
        // A count that beats its page waits for the page.
        let mut q: Paged<Row> = Paged::new(false);
        let first = q.restart().unwrap();
        q.apply(first.generation, Pos::Top, rows(0..PAGE), Some(9_999), 20);
        q.typed(0, 1);
        let t = q.tick(1).unwrap();
        assert!(q.counted(t.generation, 14));
        assert_eq!(q.total, None, "not beside the previous filter's rows");
        q.apply(t.generation, Pos::Top, rows(0..14), None, 20);
        assert_eq!(q.total, Some(14));
        assert!(p.counted(s.generation, 123_456));
        assert_eq!(p.total, Some(123_456));
        assert!(!p.loading());
        // A short first page is its own count; a new filter forgets the old total.
        p.typed(0, 1);
        assert_eq!(p.total, None);
        let s = p.tick(1).unwrap();
        p.apply(s.generation, Pos::Top, rows(0..7), None, 20);
        assert_eq!(p.total, Some(7));
        assert!(!p.loading());
        // G asks for the end with its count, and the spinner stops when it lands.
        let mut p: Paged<Row> = Paged::new(false);
        let s = p.restart().unwrap();
        p.apply(s.generation, Pos::Top, rows(0..PAGE), Some(1000), 20);
        let end = p.bottom(20).unwrap();
        assert!(end.count);
        let mut tail = rows(800..1000);
        tail.reverse();
        p.apply(end.generation, Pos::Bottom, tail, Some(1000), 20);
        assert!(!p.loading(), "nothing left in flight");
    }

    #[test]
    fn window_stays_bounded() {
        let mut p: Paged<Row> = Paged::new(false);
        let s = p.restart().unwrap();
        p.apply(s.generation, Pos::Top, rows(0..PAGE), Some(100_000), 20);
        for i in 1..10 {
            let c = p.rows.last().unwrap().cursor(0);
            p.apply(
                s.generation,
                Pos::After(c),
                rows(i * PAGE..(i + 1) * PAGE),
                None,
                20,
            );
        }
        assert_eq!(p.rows.len(), WINDOW);
        assert_eq!(p.base, 10 * PAGE - WINDOW as i64);
    }
}
