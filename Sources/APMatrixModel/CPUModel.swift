import SystemPackage

/// A QEMU CPU model string reduced to what AP pass-through depends on:
/// `host,ap=on,apqci=on,apft=on,apqi=on,appv=on,appvi=on` (any feature may be `=off`).
public struct CPUModel: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    /// AP instructions interpreted for the guest; needed for a vfio-ap device.
    public var ap: Bool
    /// PQAP(QCI): the guest can read its AP configuration (ids above the legacy maxima, change notifications).
    public var apqci: Bool
    /// AP facilities test: without it the guest sees no AP device.
    public var apft: Bool
    /// AP queue interruption control.
    public var apqi: Bool
    /// AP instructions for a Secure Execution guest (QEMU 8.2, Ultravisor feature bit 4).
    public var appv: Bool
    /// AP interruptions for a Secure Execution guest (QEMU 8.2, Ultravisor feature bit 5).
    public var appvi: Bool

    public static let featureNames = ["ap", "apqci", "apft", "apqi", "appv", "appvi"]

    /// Parses a `-cpu` value against the host's facilities (SPEC §4): the
    /// `host` model starts with every AP feature the host allows, any other
    /// model with none; `feature=on|off` overrides; a feature turned on that
    /// the host lacks is an error naming it.
    public init(parsing text: String, facilities: Facilities) throws(APError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let model = parts.first, !model.isEmpty, !model.contains("="),
              model.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || $0 == 46 || $0 == 45 || $0 == 95 })
        else {
            throw APError(.invalidArgument, "CPU model '\(text)': start with a model name such as host, then feature=on|off")
        }
        let host = model == "host"
        name = model
        let apqiAvailable = facilities.apqi && facilities.aiv
        ap = host
        apqci = host && facilities.qci
        apft = host && facilities.apft
        apqi = host && apqiAvailable
        appv = host && facilities.pv && facilities.appv
        appvi = appv && facilities.appvi
        for item in parts.dropFirst() {
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard kv.count == 2, let on = Self.boolean(kv[1]) else {
                throw APError(.invalidArgument, "CPU model '\(text)': '\(item)' is not feature=on or feature=off")
            }
            switch kv[0] {
            case "ap": ap = on
            case "apqci":
                if on && !facilities.qci { throw Self.missing("apqci", "qci (STFLE bit 12)") }
                apqci = on
            case "apft":
                if on && !facilities.apft { throw Self.missing("apft", "apft (STFLE bit 15)") }
                apft = on
            case "apqi":
                if on && !facilities.apqi { throw Self.missing("apqi", "apqi (STFLE bit 65)") }
                if on && !facilities.aiv { throw Self.missing("apqi", "aiv (adapter-interruption virtualization)") }
                apqi = on
            case "appv":
                if on && !(facilities.pv && facilities.appv) {
                    throw Self.missing("appv", facilities.pv ? "appv (Ultravisor feature bit 4)" : "pv (protected virtualization)")
                }
                appv = on
            case "appvi":
                if on && !(facilities.pv && facilities.appvi) {
                    throw Self.missing("appvi", facilities.pv ? "appvi (Ultravisor feature bit 5)" : "pv (protected virtualization)")
                }
                appvi = on
            default:
                throw APError(.invalidArgument,
                              "CPU model '\(text)': unknown feature '\(kv[0])' (the AP features are \(Self.featureNames.joined(separator: ", ")))")
            }
        }
    }

    /// QEMU's `check_consistency` warnings: a feature on without the one it
    /// requires (`'appv' requires 'ap'.`). QEMU starts the guest anyway.
    public var warnings: [String] {
        [("appv", appv, "ap", ap), ("appvi", appvi, "appv", appv)]
            .filter { $0.1 && !$0.3 }.map { "'\($0.0)' requires '\($0.2)'." }
    }

    static func missing(_ feature: String, _ facility: String) -> APError {
        APError(.invalidArgument, "CPU feature \(feature) is not available: the host lacks facility \(facility)")
    }

    static func boolean(_ s: String) -> Bool? {
        switch s {
        case "on", "yes", "true": return true
        case "off", "no", "false": return false
        default: return nil
        }
    }

    /// `host,ap=on,apqci=on,apft=on,apqi=off,appv=on,appvi=on`
    public var description: String {
        func f(_ n: String, _ v: Bool) -> String { "\(n)=\(v ? "on" : "off")" }
        return [name, f("ap", ap), f("apqci", apqci), f("apft", apft), f("apqi", apqi), f("appv", appv), f("appvi", appvi)]
            .joined(separator: ",")
    }
}
