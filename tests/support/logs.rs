//! Counting what a test's captured log says.

/// How many lines of `logged` hold `level` (as the log writes it, such as
/// `WARN`) and every one of `words`.
pub(crate) fn lines_with(logged: &str, level: &str, words: &[&str]) -> usize {
    logged.lines().filter(|line| line.contains(level) && words.iter().all(|word| line.contains(word))).count()
}
