/// The timers of an AP bus, the host's or a guest's (`ap_bus.c` keeps them
/// as module state): the rescan timer that scans every `config_time`
/// seconds and counts the scans (`scans`), and the poll timer of requests
/// (`poll_thread`, `poll_timeout`).
///
/// Time is not stored: the timer keeps when it was armed and the scan count
/// then; the periodic scans since are derived from the time of a read.
public struct BusTimers: Hashable, Sendable {
    /// `ap_scan_bus_time`: seconds between periodic scans (5–120, default 30, `AP_CONFIG_TIME`).
    public internal(set) var configTime = 30
    /// When the rescan timer was last armed: by a recorded scan or a write to `config_time`.
    public internal(set) var timerArmed = Uptime.boot
    /// `ap_scan_bus_count` when the timer was armed.
    public internal(set) var scansWhenArmed = 0
    /// Whether the `appoll` kthread runs (`poll_thread`).
    public internal(set) var pollThread = false
    /// `poll_high_timeout`: nanoseconds between polls without interrupts (an LPAR's 4 kHz).
    public internal(set) var pollTimeout: UInt64 = 250_000

    public static let configTimeRange = 5...120
    /// The longest `poll_timeout`: 120 seconds in nanoseconds.
    public static let pollTimeoutLimit: UInt64 = 120_000_000_000

    /// How many times the rescan timer expired from its arming until `now`.
    func periodicScans(until now: Uptime) -> Int {
        max(0, Int(((now - timerArmed) / Double(configTime)).rounded(.down)))
    }

    /// `ap_scan_bus_count` at `now` for a bus that scans on its timer.
    func scans(at now: Uptime) -> Int { scansWhenArmed + periodicScans(until: now) }

    /// When the next periodic scan after `now` is due, and its number.
    func nextExpiry(after now: Uptime) -> (time: Uptime, number: Int) {
        let done = periodicScans(until: now)
        return (timerArmed + Double((done + 1) * configTime), scansWhenArmed + done + 1)
    }

    /// Records scan `number`, made at `time`: the scan re-arms the timer (`mod_timer` at the end of `ap_scan_bus`).
    mutating func recordScan(_ number: Int, at time: Uptime) {
        scansWhenArmed = number
        timerArmed = time
    }

    /// A new `config_time` at `now`: the timer is re-armed from now with the count so far.
    mutating func setConfigTime(_ seconds: Int, scansSoFar: Int, at now: Uptime) {
        scansWhenArmed = scansSoFar
        timerArmed = now
        configTime = seconds
    }
}

/// Sets the timers of one AP bus, the host's or a guest's, with the kernel's
/// checks; `interrupts` is `ap_irq_flag` (adapter interrupts in use).
extension BusTimers {
    /// The refusal of a `config_time` write, whatever was wrong with it.
    public static let configTimeRefused = APError(.invalidArgument, "config_time: write a number of seconds from 5 to 120")

    /// A `config_time` write (`config_time_store`): 5–120, else EINVAL.
    mutating func storeConfigTime(_ seconds: Int64, scansSoFar: Int, at now: Uptime) throws(APError) {
        guard let s = Int(exactly: seconds), Self.configTimeRange.contains(s) else { throw Self.configTimeRefused }
        setConfigTime(s, scansSoFar: scansSoFar, at: now)
    }

    /// A `poll_thread` write (`poll_thread_store`): starting the thread does
    /// nothing while adapter interrupts are in use (`ap_poll_thread_start`
    /// returns 0 at once), so `poll_thread` stays 0 there.
    mutating func storePollThread(_ on: Bool, interrupts: Bool) {
        pollThread = on && !interrupts
    }

    /// A `poll_timeout` write (`poll_timeout_store`) already in the range
    /// the profile's parser allows.
    mutating func storePollTimeout(_ ns: UInt64) {
        pollTimeout = ns
    }
}

/// How `poll_thread` and `poll_timeout` parse a write (docs/upstream-ap-bus.md §1).
public enum PollParsing: Sendable {
    /// 5.x: `sscanf("%d")` (non-zero starts the thread) and `sscanf("%llu")`.
    case sscanf
    /// 6.x: `kstrtobool` and `kstrtoul(buf, 0)`, whose errors are returned as they are.
    case kstrto
}
