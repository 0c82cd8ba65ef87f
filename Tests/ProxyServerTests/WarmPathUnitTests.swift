import HTTPTypes
import NIOHPACK
import Testing

@testable import ProxyServer

/// What the HTTP/2 warm path reads of a header block: the request it judges, or nothing.
struct WarmHTTP2RequestTests {
    @Test func aGetOrHeadBecomesTheRequestTheHTTP1PathWouldSee() throws {
        let block = HPACKHeaders([
            (":method", "GET"), (":scheme", "https"), (":authority", "mirror.test"), (":path", "/v2/a/manifests/1?ns=x"),
            ("accept", "application/vnd.oci.image.index.v1+json"), ("accept", "application/vnd.oci.image.manifest.v1+json"),
            ("user-agent", "curl/8"),
        ])
        let request = try #require(WarmHTTP2Handler.request(block))
        #expect(request.method == .get && request.scheme == "https" && request.authority == "mirror.test")
        #expect(request.path == "/v2/a/manifests/1?ns=x")
        #expect(request.headerFields[values: .accept].count == 2 && request.headerFields[.userAgent] == "curl/8")
        #expect(WarmHTTP2Handler.request(HPACKHeaders([(":method", "HEAD"), (":path", "/v2/")]))?.method == .head)
    }

    @Test func anythingElseIsLeftToTheFullPath() {
        for block in [
            [(":method", "POST"), (":path", "/v2/a/manifests/1")],
            [(":method", "DELETE"), (":path", "/v2/a/manifests/1")],
            [(":method", "GET")],
            [(":path", "/v2/a/manifests/1")],
            [(":method", "GET"), (":path", "/v2/a/manifests/1"), (":protocol", "websocket")],
            [(":method", "GET"), (":path", "/v2/a/manifests/1"), ("bad name", "x")],
        ] {
            #expect(WarmHTTP2Handler.request(HPACKHeaders(block)) == nil, "\(block)")
        }
    }
}

struct WarmAnswerBudgetTests {
    @Test func answersTakeTheirCostUntilItIsGivenBack() {
        let budget = WarmAnswerBudget(limit: 10_000)
        #expect(WarmAnswerBudget.cost(body: 4_000) == 5_024)
        #expect(budget.reserve(5_024) && budget.inUse == 5_024)
        #expect(budget.reserve(4_976) && budget.inUse == 10_000, "up to the limit")
        #expect(!budget.reserve(1) && budget.inUse == 10_000, "past it: nothing taken")
        budget.release(5_024)
        #expect(budget.reserve(1_024) && budget.inUse == 6_000)
    }
}
