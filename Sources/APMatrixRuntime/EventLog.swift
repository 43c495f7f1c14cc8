import APMatrixModel

/// The host's event log: every event numbered in the order it happened and
/// stamped with the host's clock, the newest `capacity` kept (like dmesg's
/// ring buffer).
struct EventLog {
    let capacity: Int
    private(set) var entries: [LogEntry] = []
    /// The sequence number the next event gets.
    private(set) var nextSequence = 1

    init(capacity: Int) { self.capacity = capacity }

    /// Continues a saved log.
    mutating func restore(_ saved: [LogEntry], nextSequence: Int) {
        entries = saved
        self.nextSequence = nextSequence
    }

    /// Numbers and stamps `events`; returns the new entries.
    mutating func append(_ events: [Event], at now: Uptime) -> ArraySlice<LogEntry> {
        guard !events.isEmpty else { return [] }
        let first = entries.count
        for e in events {
            entries.append(LogEntry(sequence: nextSequence, seconds: now.seconds, event: e))
            nextSequence += 1
        }
        let added = entries[first...]
        // Trim in batches: dropping from the front of a full log on every
        // operation would move the whole log each time.
        if entries.count > capacity + capacity / 4 {
            let drop = entries.count - capacity
            entries.removeFirst(drop)
            return entries[(first - drop)...]
        }
        return added
    }

    /// Forgets the newest `count` entries (a change that could not be saved).
    mutating func removeLast(_ count: Int) {
        entries.removeLast(min(count, entries.count))
        nextSequence -= count
    }

    /// The entries after `sequence`, oldest first.
    func entries(after sequence: Int) -> [LogEntry] {
        // Sequences are consecutive: index straight into the kept window.
        guard let firstKept = entries.first?.sequence else { return [] }
        let start = max(0, sequence + 1 - firstKept)
        guard start < entries.count else { return [] }
        if entries[start].sequence == max(sequence + 1, firstKept) { return Array(entries[start...]) }
        return entries.filter { $0.sequence > sequence }
    }

    /// The newest `count` entries.
    func tail(_ count: Int) -> [LogEntry] { Array(entries.suffix(count)) }
}
