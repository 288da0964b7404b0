//! Tests of the principal mapper and its rules, Kafka's own cases first.

use super::*;
use crate::tls::config::{PemItem, certificates_from_pem};

fn cert(pem: &[u8]) -> CertificateDer<'static> {
    certificates_from_pem(pem, PemItem::ClientCertificate).unwrap().remove(0)
}

fn mapped(rules: &str, dn: &str) -> String {
    PrincipalMapper::parse(rules).unwrap().map(dn).unwrap()
}

/// Kafka's `SslPrincipalMapperTest.testValidRules`.
#[test]
fn kafka_valid_rules() {
    for rules in [
        "DEFAULT",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
        "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
        "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
        "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
    ] {
        PrincipalMapper::parse(rules).unwrap_or_else(|e| panic!("{rules}: {e}"));
    }
}

/// Kafka's `SslPrincipalMapperTest.testInvalidRules`.
#[test]
fn kafka_invalid_rules() {
    for rules in [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/U",
        "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
        "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
    ] {
        assert!(PrincipalMapper::parse(rules).is_err(), "{rules} accepted");
    }
}

#[test]
fn rule_errors_say_what_is_wrong() {
    let err = |rules: &str| PrincipalMapper::parse(rules).unwrap_err();
    assert!(matches!(err("DEFAULT/L"), RuleError::Syntax { reason: SyntaxReason::Unexpected { .. }, .. }));
    assert!(matches!(err("RULE:a/b"), RuleError::Syntax { reason: SyntaxReason::MissingSlash, .. }));
    assert!(matches!(err("RULE:a\\"), RuleError::Syntax { reason: SyntaxReason::TrailingBackslash, .. }));
    assert!(matches!(err("foo"), RuleError::Syntax { reason: SyntaxReason::UnknownRule, .. }));
    assert!(matches!(err("RULE:(a/$1/"), RuleError::Pattern { .. }));
    assert!(matches!(err("RULE:(?=a)b/x/"), RuleError::Pattern { .. }), "no look-around in Rust regex");
    assert!(matches!(
        err("RULE:abc/$1/"),
        RuleError::Replacement { reason: ReplacementReason::NoSuchGroup(1), .. }
    ));
    assert!(matches!(
        err("RULE:(a)/$x/"),
        RuleError::Replacement { reason: ReplacementReason::IllegalGroupReference, .. }
    ));
    assert!(matches!(
        err("RULE:(a)/${nope}/"),
        RuleError::Replacement { reason: ReplacementReason::NoSuchName(_), .. }
    ));
    assert!(matches!(err(" , ,"), RuleError::NoRules));
    let text = err("RULE:^CN=(.*?)$/$1/L/U").to_string();
    assert!(text.contains("RULE:^CN=(.*?)$/$1/L/U") && text.contains("\"/U\""), "{text}");
}

/// Kafka's `SslPrincipalMapperTest.testSslPrincipalMapper`.
#[test]
fn kafka_mapper_examples() {
    let rules = [
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
        "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
        "DEFAULT",
    ];
    let list = PrincipalMapper::from_rules(rules).unwrap();
    let joined = PrincipalMapper::parse(&rules.join(", ")).unwrap();
    for mapper in [list, joined] {
        assert_eq!(mapper.map("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(), "duke");
        assert_eq!(mapper.map("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(), "duke@sme");
        assert_eq!(mapper.map("cn=duke,ou=sme,dc=mycp,dc=com").unwrap(), "DUKE@SME");
        assert_eq!(mapper.map("cN=duke,OU=JavaSoft,O=Sun Microsystems").unwrap(), "DUKE");
        assert_eq!(
            mapper.map("OU=JavaSoft,O=Sun Microsystems,C=US").unwrap(),
            "OU=JavaSoft,O=Sun Microsystems,C=US"
        );
    }
}

/// The example in Kafka's `ssl.principal.mapping.rules` documentation.
#[test]
fn kafka_documentation_example() {
    let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
                 RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
                 RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
                 DEFAULT";
    let mapper = PrincipalMapper::parse(rules).unwrap();
    assert_eq!(
        mapper.map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(),
        "serviceuser"
    );
    assert_eq!(
        mapper.map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(),
        "adminuser@admin"
    );
}

/// Kafka's `SslPrincipalMapperTest.testRulesSplitting`, rendered our way.
#[test]
fn kafka_rule_splitting() {
    let rules = |text: &str| PrincipalMapper::parse(text).map(|m| m.rules.len()).unwrap_or(0);
    assert_eq!(rules("DEFAULT"), 1);
    assert_eq!(rules("RULE://"), 1);
    assert_eq!(rules("RULE:/.*/"), 1);
    assert_eq!(rules("RULE:/.*/L"), 1);
    assert_eq!(rules("RULE://,DEFAULT"), 2);
    assert_eq!(rules("  RULE:// ,  DEFAULT  "), 2);
    assert_eq!(rules("  RULE:   /     / ,  DEFAULT  "), 2);
    assert_eq!(rules("  RULE:  /     /U   ,DEFAULT  "), 2);
    assert_eq!(rules("  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  "), 3);
    assert_eq!(rules(",,RULE://,,,DEFAULT,,"), 2);
    assert_eq!(rules(",  , RULE: /   /    ,,,   DEFAULT, ,   "), 2);
    assert_eq!(rules("     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,"), 2);
    assert_eq!(rules(r"RULE:\/\\\(\)\n\t/\/\//"), 1);
    assert_eq!(rules(r"RULE:\**\/+/*/L,RULE:\/*\**/**/"), 2);
    // Commas inside patterns and replacements belong to them.
    let mapper = PrincipalMapper::parse(
        r"RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
    )
    .unwrap();
    assert_eq!(mapper.rules.len(), 5);
    assert_eq!(mapper.map(",RULE:,").unwrap(), ",RULE:,/");
    assert_eq!(mapper.map(",").unwrap(), "RULE:,");
    assert_eq!(mapper.map(", DEFAULT, ").unwrap(), "DEFAULT");
    assert_eq!(mapper.map("other").unwrap(), "other");
    // Escaped slashes: the pattern matches a '/', the replacement writes one.
    assert_eq!(mapped(r"RULE:^a\/(b)$/x\/$1/", "a/b"), "x/b");
}

/// Kafka's `SslPrincipalMapperTest.testCommaWithWhitespace`.
#[test]
fn kafka_comma_with_whitespace() {
    let mapper = PrincipalMapper::parse(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT").unwrap();
    assert_eq!(mapper.map(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz").unwrap(), r"Tkac\, Adam");
}

/// Replacement semantics checked against Java 17's `String.replaceAll`.
#[test]
fn java_replacement_semantics() {
    assert_eq!(mapped("RULE:.*/x/", "abc"), "xx", "Java also replaces the empty match at the end");
    assert_eq!(mapped("RULE:(a)(b)(c)/$12/", "abc"), "a2");
    assert_eq!(mapped("RULE:(a)(b)(c)/$4/", "abc"), "$4", "Kafka keeps an unknown group literal");
    assert_eq!(mapped(r"RULE:(a)(b)(c)/\$1/", "abc"), "$1");
    assert_eq!(mapped("RULE:(a)(b)(c)/$0-$3/", "abc"), "abc-c");
    assert_eq!(mapped("RULE:(a)(b)(c)/$01/", "abc"), "a");
    assert_eq!(mapped("RULE:(?<first>a)bc/${first}!/", "abc"), "a!");
    assert_eq!(mapped("RULE:(x)?abc/[$1]/", "abc"), "[]");
    assert_eq!(mapped("RULE:^CN=(.*)$/$1/U", "CN=straße"), "STRASSE");
    // Whole-string match: a partial match does not apply the rule.
    let mapper = PrincipalMapper::parse("RULE:CN=(\\w+)/$1/").unwrap();
    assert_eq!(mapper.map("CN=a,OU=b"), Err(PrincipalError::NoMatchingRule { dn: "CN=a,OU=b".into() }));
}

#[test]
fn default_rules_take_the_cn() {
    let mapper = PrincipalMapper::default();
    assert_eq!(mapper.map("CN=client1,OU=Kafka,O=Example").unwrap(), "client1");
    assert_eq!(mapper.map("OU=Kafka,O=Example").unwrap(), "OU=Kafka,O=Example");
    let parsed = PrincipalMapper::parse(DEFAULT_RULES).unwrap();
    assert_eq!(parsed.to_string(), mapper.to_string());
    assert_eq!(mapper.to_string(), "RULE:^CN=([^,]+).*$/$1/, DEFAULT");
    let rich = cert(include_bytes!("../testdata/rich.pem"));
    // The most specific RDN is not CN here, so DEFAULT applies.
    assert!(mapper.principal(Some(&[rich])).unwrap().starts_with("2.5.4.5=#13023432,"));
}

#[test]
fn one_way_tls_is_anonymous() {
    let mapper = PrincipalMapper::default();
    assert_eq!(mapper.principal(None).unwrap(), ANONYMOUS);
    assert_eq!(mapper.principal(Some(&[])).unwrap(), "$anonymous");
}

#[test]
fn no_matching_rule() {
    let mapper = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/").unwrap();
    assert_eq!(mapper.map("OU=x"), Err(PrincipalError::NoMatchingRule { dn: "OU=x".into() }));
}
