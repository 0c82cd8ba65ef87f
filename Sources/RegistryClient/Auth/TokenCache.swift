/// Bearer tokens per (realm, service, scope), kept until shortly before they expire.
actor TokenCache {
    struct Key: Hashable {
        var realm: String
        var service: String
        var scope: String
    }

    private var tokens: [Key: (token: String, expires: ContinuousClock.Instant)] = [:]
    private let clock = ContinuousClock()

    func token(for key: Key) -> String? {
        guard let entry = tokens[key] else { return nil }
        if entry.expires <= clock.now {
            tokens[key] = nil
            return nil
        }
        return entry.token
    }

    func store(_ token: String, for key: Key, lifetime: Duration) {
        // Renew a little early so a token never expires between check and use.
        let margin = min(Duration.seconds(10), lifetime / 4)
        tokens[key] = (token, clock.now + lifetime - margin)
    }
}
