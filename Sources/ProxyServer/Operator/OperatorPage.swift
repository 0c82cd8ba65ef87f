import Foundation
import OCI
import Proxy

/// Everything the page shows, gathered once per request.
struct OperatorPageData: Sendable {
    var overview: OperatorSnapshot.Overview
    var upstreams: [OperatorSnapshot.Upstream]
    var images: OperatorSnapshot.Images
    var policies: [OperatorSnapshot.Policy]
    var mismatches: [OperatorSnapshot.Mismatch]
    var now: Date
}

/// The operator's page, rendered on the server: plain HTML that reads with scripts off (the
/// numbers of the moment); `page.js` swaps the sections in place every few seconds. Every string
/// that comes from outside (names, tags, errors, rules) is escaped.
enum OperatorPage {
    static func render(_ data: OperatorPageData) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Archway</title>
            <link rel="icon" href="data:,">
            <link rel="stylesheet" href="/_archway/page.css">
            <script src="/_archway/page.js" defer></script>
            </head><body>
            <header><h1>Archway</h1><nav>
            """
        for section in OperatorSection.allCases { html += ##"<a href="#\##(section.rawValue)">\##(title(section))</a>"## }
        html += #"</nav><p class="muted" id="generated">at \#(escape(iso(data.now)))</p></header><main>"#
        for section in OperatorSection.allCases {
            html += #"<section id="\#(section.rawValue)"><h2>\#(title(section))</h2>"# + body(section, data) + "</section>"
        }
        html += "</main></body></html>\n"
        return html
    }

    static func title(_ section: OperatorSection) -> String {
        switch section {
        case .overview: "Overview"
        case .upstreams: "Upstreams"
        case .images: "Images"
        case .policies: "Policies"
        case .mismatches: "Mismatches"
        }
    }

    static func body(_ section: OperatorSection, _ data: OperatorPageData) -> String {
        switch section {
        case .overview: overview(data.overview)
        case .upstreams: upstreams(data.upstreams, now: data.now)
        case .images: images(data.images, now: data.now)
        case .policies: policies(data.policies, now: data.now)
        case .mismatches: mismatches(data.mismatches, now: data.now)
        }
    }

    // MARK: - Sections

    static func overview(_ overview: OperatorSnapshot.Overview) -> String {
        var html = #"<div class="cards">"#
        let limit = overview.cacheLimit.map { " of " + bytes($0) } ?? " (no limit)"
        var usage = ""
        if let limit = overview.cacheLimit, limit > 0 {
            usage = #"<br><progress class="usage" value="\#(overview.cacheBytes)" max="\#(limit)"></progress>"#
        }
        html += card("Cache", bytes(overview.cacheBytes) + limit, id: "cache-size", extra: usage)
        for (label, traffic, id) in [("Last hour", overview.lastHour, "hour"), ("Last day", overview.lastDay, "day")] {
            let ratio = traffic.hitRatio.map { String(format: "%.0f%%", $0 * 100) } ?? "–"
            html += card(
                label,
                "hit ratio \(ratio) · \(traffic.hits) hits, \(traffic.misses) misses"
                    + " · served \(bytes(traffic.bytesServed)), fetched \(bytes(traffic.bytesFetched))", id: "traffic-\(id)")
        }
        html += "</div>"
        html += #"<div class="charts"><figure><figcaption>Last hour, per minute: served (blue) and fetched upstream (grey)</figcaption>"#
        html += chart(overview.minutes, id: "chart-hour") + "</figure>"
        html += #"<figure><figcaption>Last day, per hour</figcaption>"# + chart(overview.hours, id: "chart-day") + "</figure></div>"
        html += "<h3>Downloads in flight</h3>"
        if overview.downloads.isEmpty {
            html += #"<p class="muted" id="downloads-none">none</p>"#
        } else {
            html += #"<table id="downloads"><tr><th>repository</th><th>digest</th><th>progress</th><th></th></tr>"#
            for download in overview.downloads {
                let shown = download.expected.map { "\(bytes(download.written)) of \(bytes($0))" } ?? bytes(download.written)
                let bar =
                    download.expected.map { #"<progress value="\#(download.written)" max="\#(max($0, 1))"></progress>"# }
                    ?? "<progress></progress>"
                html += #"<tr class="download" data-digest="\#(escape(download.digest.description))" data-written="\#(download.written)">"#
                html += "<td>\(escape(download.repository ?? ""))</td><td><code>\(short(download.digest))</code></td>"
                html += "<td>\(bar)</td><td>\(escape(shown))</td></tr>"
            }
            html += "</table>"
        }
        if let waiting = overview.scansWaiting, waiting > 0 {
            html += #"<p class="muted">\#(waiting) image(s) waiting for the scan of their binaries</p>"#
        }
        return html
    }

    static func upstreams(_ upstreams: [OperatorSnapshot.Upstream], now: Date) -> String {
        var html = "<table><tr><th>upstream</th><th>state</th><th>latency</th><th>last error</th><th>rate limit left</th></tr>"
        for upstream in upstreams {
            let state: String =
                switch upstream.reachable {
                case true?: #"<span class="ok">reachable</span>"#
                case false?: #"<span class="bad">unreachable</span>"#
                case nil: #"<span class="muted">not asked yet</span>"#
                }
            let latency = upstream.averageLatencyMilliseconds.map { String(format: "%.0f ms", $0) } ?? "–"
            var error = "–"
            if let message = upstream.lastError {
                error = escape(message) + (upstream.lastErrorAt.map { " (" + ago($0, now: now) + ")" } ?? "")
            }
            let aliases =
                upstream.aliases.isEmpty ? "" : #" <span class="muted">\#(escape(upstream.aliases.joined(separator: ", ")))</span>"#
            let isPrivate = upstream.isPrivate ? #" <span class="tag">private</span>"# : ""
            html += #"<tr class="upstream" data-name="\#(escape(upstream.name))">"#
            html += "<td>\(escape(upstream.name))\(aliases)\(isPrivate)</td><td>\(state)</td><td>\(latency)</td><td>\(error)</td>"
            html += "<td>\(upstream.rateLimitRemaining.map(String.init) ?? "–")</td></tr>"
        }
        return html + "</table>"
    }

    static func images(_ images: OperatorSnapshot.Images, now: Date) -> String {
        var html = "<h3>Most pulled since the start</h3>"
        if images.mostPulled.isEmpty {
            html += #"<p class="muted">no pulls yet</p>"#
        } else {
            html += "<table><tr><th>repository</th><th>tag</th><th>pulls</th><th>platforms</th><th>bytes</th><th>last pull</th></tr>"
            for repository in images.mostPulled {
                let rows = max(1, repository.tags.count)
                html += #"<tr class="pulled" data-repository="\#(escape(repository.name))">"#
                html += #"<td rowspan="\#(rows)">\#(escape(repository.name))<br><span class="muted">\#(repository.pulls) pulls</span></td>"#
                if repository.tags.isEmpty {
                    html +=
                        #"<td class="muted">by digest</td><td>\#(repository.pulls)</td><td></td><td></td><td>\#(ago(repository.lastPull, now: now))</td></tr>"#
                    continue
                }
                for (position, tag) in repository.tags.enumerated() {
                    if position > 0 { html += #"<tr class="pulled-tag">"# }
                    html += #"<td title="\#(escape(tag.digest.description))">\#(escape(tag.name))</td><td>\#(tag.pulls)</td>"#
                    html += "<td>\(escape(tag.platforms.joined(separator: ", ")))</td><td>\(tag.bytes.map(bytes) ?? "–")</td>"
                    html += "<td>\(ago(tag.lastPull, now: now))</td></tr>"
                }
            }
            html += "</table>"
        }
        html += #"<h3>Cached repositories <span class="muted">(\#(images.total))</span></h3>"#
        html += #"<table id="cached"><tr><th>repository</th><th>tags</th><th>last confirmed upstream</th></tr>"#
        for repository in images.cached {
            html += "<tr><td>\(escape(repository.repository))</td><td>\(repository.tags)</td>"
            html += "<td>\(ago(repository.lastValidated, now: now))</td></tr>"
        }
        html += "</table>"
        if images.pages > 1 {
            html += #"<p class="pages">page \#(images.page) of \#(images.pages) "#
            if images.page > 1 { html += #"<a rel="prev" href="?page=\#(images.page - 1)#images">previous</a> "# }
            if images.page < images.pages { html += #"<a rel="next" href="?page=\#(images.page + 1)#images">next</a>"# }
            html += "</p>"
        }
        return html
    }

    static func policies(_ policies: [OperatorSnapshot.Policy], now: Date) -> String {
        guard !policies.isEmpty else { return #"<p class="muted">no rules</p>"# }
        var html = ""
        for policy in policies {
            html += #"<article class="rule" data-rule="\#(escape(policy.name))"><h3>\#(escape(policy.name)) "#
            html += #"<span class="muted">\#(escape(policy.location))</span></h3>"#
            html += "<p>repository <code>\(escape(policy.repository))</code>"
            if !policy.tags.isEmpty { html += ", tags <code>\(escape(policy.tags.joined(separator: " ")))</code>" }
            if let mismatch = policy.mismatch { html += ", mismatch: \(escape(mismatch))" }
            html += "</p><ul>" + policy.members.map { "<li><code>\(escape($0))</code></li>" }.joined() + "</ul>"
            if policy.synthesized.isEmpty {
                html += #"<p class="muted">nothing synthesized since the start</p>"#
            }
            for entry in policy.synthesized {
                html += #"<div class="synthesis" data-tag="\#(escape(entry.repository)):\#(escape(entry.tag))">"#
                html += "<p><b>\(escape(entry.repository)):\(escape(entry.tag))</b> "
                html += #"<span class="muted">\#(entry.digest.map { short($0) } ?? "no index") · \#(ago(entry.at, now: now))</span></p>"#
                html += "<table><tr><th>platform</th><th>source</th><th>digest</th></tr>"
                for child in entry.children {
                    html +=
                        "<tr><td>\(escape(child.platform))</td><td>\(escape(child.source))</td><td><code>\(short(child.digest))</code></td></tr>"
                }
                html += "</table>"
                for warning in entry.warnings { html += #"<p class="warning">\#(escape(warning))</p>"# }
                html += "</div>"
            }
            html += "</article>"
        }
        return html
    }

    static func mismatches(_ reports: [OperatorSnapshot.Mismatch], now: Date) -> String {
        guard !reports.isEmpty else { return #"<p class="muted">no architecture mismatches recorded</p>"# }
        var html = ""
        for (position, mismatch) in reports.enumerated() {
            html += #"<article class="mismatch" data-repository="\#(escape(mismatch.repository))" data-kind="\#(escape(mismatch.kind))">"#
            html += "<p><b>\(escape(mismatch.repository)):\(escape(mismatch.reference))</b> "
            html += #"<span class="tag">\#(escape(mismatch.kind))</span> "#
            html += "\(escape(mismatch.clientPlatform)) clients got \(escape(mismatch.imagePlatforms)) · \(mismatch.count)x · "
            html += "last \(ago(mismatch.lastSeen, now: now))</p>"
            if let suggestion = mismatch.suggestion {
                let id = "rule-\(position)"
                html += #"<pre id="\#(id)" class="suggestion">\#(escape(suggestion))</pre>"#
                html += #"<button type="button" class="copy" data-copy="\#(id)">Copy rule</button>"#
            }
            html += "</article>"
        }
        return html
    }

    // MARK: - Pieces

    /// A labelled value; `extra` is markup made here, never outside text.
    static func card(_ label: String, _ value: String, id: String, extra: String = "") -> String {
        #"<div class="card" id="\#(id)"><span class="muted">\#(escape(label))</span><br>\#(escape(value))\#(extra)</div>"#
    }

    /// Bars of bytes served and fetched, one pair per bucket, scaled to the largest.
    static func chart(_ buckets: [TrafficHistory.Bucket], id: String) -> String {
        let width = 600.0
        let height = 80.0
        let top = max(1, buckets.map { max($0.bytesServed, $0.bytesFetched) }.max() ?? 1)
        let step = width / Double(max(1, buckets.count))
        var svg = #"<svg id="\#(id)" viewBox="0 0 \#(Int(width)) \#(Int(height))" role="img" aria-label="bytes served and fetched">"#
        for (position, bucket) in buckets.enumerated() {
            let x = Double(position) * step
            for (value, offset, kind) in [(bucket.bytesServed, 0.0, "served"), (bucket.bytesFetched, step / 2, "fetched")] where value > 0 {
                let bar = max(1, Double(value) / Double(top) * (height - 2))
                svg += String(
                    format: #"<rect class="%@" x="%.1f" y="%.1f" width="%.1f" height="%.1f"></rect>"#, kind, x + offset, height - bar,
                    max(0.5, step / 2 - 0.5), bar)
            }
        }
        return svg + "</svg>"
    }

    static func escape(_ text: String) -> String { text.markupEscaped }

    static func short(_ digest: Digest) -> String {
        escape(String(digest.description.prefix(19)))
    }

    static func bytes(_ count: Int64) -> String { count.byteCountText }

    static func iso(_ date: Date) -> String { date.formatted(.iso8601) }

    /// `12 s ago`, with the exact time as a tooltip.
    static func ago(_ date: Date, now: Date) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        let text =
            switch seconds {
            case ..<60: "\(seconds) s ago"
            case ..<3600: "\(seconds / 60) min ago"
            case ..<86_400: "\(seconds / 3600) h ago"
            default: "\(seconds / 86_400) d ago"
            }
        return #"<time datetime="\#(escape(iso(date)))" title="\#(escape(iso(date)))">\#(text)</time>"#
    }
}
