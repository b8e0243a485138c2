import Testing
import TickwireServer

@Suite struct BearerCredentials {
    @Test func takesExactlyTheSchemeOneSpaceAndAToken() {
        #expect(BearerCredential.parse("Bearer abc.DEF-_~+/==") == "abc.DEF-_~+/==")
        #expect(BearerCredential.parse("bearer abc") == "abc")
        #expect(BearerCredential.parse("BEARER abc") == "abc")
    }

    /// `Bearer` and two spaces once matched an empty API key.
    @Test func refusesEverythingElse() {
        for header in [nil, "", "Bearer", "Bearer ", "Bearer  ", "Bearer  abc", "Bearer abc ", "Bearer a b",
                       "Bearerabc", "Basic abc", "Bearer\tabc", "Bearer ===", "Bearer a=b", "Bearer é"] {
            #expect(BearerCredential.parse(header) == nil, "\(header ?? "nil")")
        }
    }
}
