import Foundation

/// Readers of what upstreams answer besides manifests and blobs: token grants, tag lists, `Link`
/// headers. Every byte comes from a server Archway does not trust, so each reader bounds what it
/// keeps and answers nil rather than throwing anything the caller did not expect. `make fuzz`
/// runs them (with error bodies and `WWW-Authenticate` challenges) on hostile input.
public enum UpstreamAnswer {
    /// A token service's grant: `token` (Docker) or `access_token` (OAuth2), kept between one
    /// second and a day (`expires_in`, 60 s when absent).
    public struct TokenGrant: Sendable, Hashable {
        public var token: String
        public var lifetime: Duration
    }

    /// Tokens longer than this are refused: a header must carry them to every request.
    public static let maximumTokenLength = 16 << 10
    /// Tags kept from one answer.
    public static let maximumTags = 100_000

    private struct Grant: Decodable {
        var token: String?
        var accessToken: String?
        var expiresIn: Int?

        enum CodingKeys: String, CodingKey {
            case token
            case accessToken = "access_token"
            case expiresIn = "expires_in"
        }
    }

    /// The grant in a token service's body; nil when there is none, or it cannot be a header.
    public static func tokenGrant(_ body: Data) -> TokenGrant? {
        guard let grant = try? JSONDecoder().decode(Grant.self, from: body),
            let token = grant.token.flatMap({ $0.isEmpty ? nil : $0 }) ?? grant.accessToken,
            !token.isEmpty, token.utf8.count <= maximumTokenLength,
            token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        let seconds = min(max(grant.expiresIn ?? 60, 1), 86_400)
        return TokenGrant(token: token, lifetime: .seconds(seconds))
    }

    /// The tag list in a `tags/list` body, at most ``maximumTags`` of them; nil when it is not one.
    public static func tagPage(_ body: Data) -> TagPage? {
        guard var page = try? JSONDecoder().decode(TagPage.self, from: body) else { return nil }
        if page.tags.count > maximumTags { page.tags = Array(page.tags.prefix(maximumTags)) }
        return page
    }

    /// Whether `Link` headers announce a next page (`<...>; rel="next"`).
    public static func hasNextPage(_ links: [String]) -> Bool {
        links.contains { link in
            link.split(separator: ",").contains { part in
                part.split(separator: ";").dropFirst().contains { parameter in
                    let text = parameter.trimmingCharacters(in: .whitespaces).lowercased()
                    return text == #"rel="next""# || text == "rel=next"
                }
            }
        }
    }
}
