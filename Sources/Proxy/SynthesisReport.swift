import OCI

/// What a synthesis did: the index (if any member existed), and what became of each member.
public struct SynthesisReport: Sendable {
    public struct Member: Sendable, Hashable {
        public enum Outcome: Sendable, Hashable {
            /// Contributed these platforms (some may have lost to earlier members).
            case contributed([Platform])
            /// Not there upstream: skipped.
            case missing(String)
            /// There, but its declared platform contradicts its config: left out.
            case excluded(String)
            /// The upstream could not be asked.
            case unavailable(String)
        }

        /// `requested tag` for the tag itself, else the expanded member reference.
        public var source: String
        public var outcome: Outcome
    }

    public var rule: String
    public var index: Manifest?
    public var members: [Member]
    /// Each child: its platform and where it came from.
    public var children: [(platform: Platform, descriptor: Descriptor, source: String)]
    /// Some member was answered from the cache because its upstream failed.
    public var usedStaleAnswers = false

    /// Whether a member could not be asked (the index may lack platforms it would have had).
    public var isIncomplete: Bool {
        members.contains { if case .unavailable = $0.outcome { true } else { false } }
    }

    /// Human-readable warnings: exclusions, missing members, unavailable upstreams.
    public var warnings: [String] {
        members.compactMap { member in
            switch member.outcome {
            case .contributed: nil
            case .missing(let why): "\(member.source): skipped, \(why)"
            case .excluded(let why): "\(member.source): excluded, \(why)"
            case .unavailable(let why): "\(member.source): unavailable, \(why)"
            }
        }
    }
}
