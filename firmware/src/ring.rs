//! A fixed-capacity ring buffer of rows, for `Push` / `ForecastNow` streaming: no allocation,
//! capacity in the type.

/// The last `rows` rows of `width` values, stored in `N` values.
#[derive(Debug, Clone)]
pub struct Ring<const N: usize> {
    data: [f32; N],
    width: usize,
    rows: usize,
    head: usize,
    filled: usize,
}

impl<const N: usize> Ring<N> {
    /// A ring of `rows × width` values; `None` when that exceeds `N` or is empty.
    pub fn new(rows: usize, width: usize) -> Option<Self> {
        let size = rows.checked_mul(width)?;
        (size > 0 && size <= N).then_some(Ring {
            data: [0.0; N],
            width,
            rows,
            head: 0,
            filled: 0,
        })
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Appends a row of exactly `width` values (else returns false and keeps nothing).
    pub fn push(&mut self, row: &[f32]) -> bool {
        if row.len() != self.width {
            return false;
        }
        let at = self.head * self.width;
        self.data[at..at + self.width].copy_from_slice(row);
        self.head = (self.head + 1) % self.rows;
        self.filled = (self.filled + 1).min(self.rows);
        true
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// True once `rows` rows are held.
    pub fn is_full(&self) -> bool {
        self.filled == self.rows
    }

    /// Copies the rows, oldest first, into `out[..rows × width]`.
    pub fn copy_ordered(&self, out: &mut [f32]) {
        let size = self.rows * self.width;
        let split = self.head * self.width;
        out[..size - split].copy_from_slice(&self.data[split..size]);
        out[size - split..size].copy_from_slice(&self.data[..split]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_latest_rows_oldest_first() {
        let mut r = Ring::<8>::new(3, 2).unwrap();
        for i in 0..4 {
            assert!(r.push(&[i as f32, -(i as f32)]));
        }
        let mut out = [0.0; 6];
        r.copy_ordered(&mut out);
        assert_eq!(out, [1.0, -1.0, 2.0, -2.0, 3.0, -3.0]);
        assert!(!r.push(&[1.0]), "wrong width is refused");
        assert!(Ring::<8>::new(3, 3).is_none(), "9 values do not fit in 8");
    }
}
