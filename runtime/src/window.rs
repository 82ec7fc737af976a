//! A fixed-size ring buffer of the latest rows of a series: streaming forecasts push rows as
//! they arrive and read the window in time order, without allocating.

/// The last `rows` rows of `width` values each.
#[derive(Debug, Clone)]
pub struct Window {
    width: usize,
    capacity_rows: usize,
    data: Vec<f32>,
    /// Index of the oldest row once full; next row to write.
    head: usize,
    filled: usize,
}

impl Window {
    /// An empty window of `rows` rows × `width` values.
    pub fn new(rows: usize, width: usize) -> Window {
        Window {
            width,
            capacity_rows: rows,
            data: vec![0.0; rows * width],
            head: 0,
            filled: 0,
        }
    }

    /// Appends one row (exactly `width` values), dropping the oldest when full.
    pub fn push(&mut self, row: &[f32]) {
        debug_assert_eq!(row.len(), self.width);
        if self.capacity_rows == 0 {
            return;
        }
        let at = self.head * self.width;
        self.data[at..at + self.width].copy_from_slice(&row[..self.width]);
        self.head = (self.head + 1) % self.capacity_rows;
        self.filled = (self.filled + 1).min(self.capacity_rows);
    }

    /// True once `rows` rows have been pushed.
    pub fn is_full(&self) -> bool {
        self.filled == self.capacity_rows
    }

    /// Copies the rows, oldest first, into `out` (`rows × width` values).
    pub fn copy_ordered(&self, out: &mut [f32]) {
        let split = self.head * self.width;
        let tail = self.data.len() - split;
        out[..tail].copy_from_slice(&self.data[split..]);
        out[tail..].copy_from_slice(&self.data[..split]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_rows_in_time_order() {
        let mut w = Window::new(3, 2);
        for i in 0..5 {
            w.push(&[i as f32, 10.0 + i as f32]);
        }
        assert!(w.is_full());
        let mut out = [0.0; 6];
        w.copy_ordered(&mut out);
        assert_eq!(out, [2.0, 12.0, 3.0, 13.0, 4.0, 14.0]);
    }
}
