//! The member portal's languages: English, German and Czech. Which one a page speaks
//! (`?lang=`, else the `tally_lang` cookie the language switch sets, else the first of
//! `Accept-Language` Tally speaks, else English), its texts as one table checked by the
//! compiler (every key has exactly its three translations), and numbers and dates as
//! each language writes them. German and Czech address the member formally (Sie, vy).

use axum::http::{HeaderMap, HeaderValue, header};
use jiff::Timestamp;
use serde_json::Value;

/// The cookie that remembers a chosen language for a year.
pub const COOKIE: &str = "tally_lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Cs,
}

impl Lang {
    /// In the order the language switch lists them.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::De, Lang::Cs];

    /// `en`, `de` or `cs` (any case).
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            "cs" => Some(Lang::Cs),
            _ => None,
        }
    }

    /// The page's language: the query's `lang`, else the cookie, else the first
    /// language of `Accept-Language` we speak, else English.
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| super::session::cookie(headers, COOKIE).and_then(Lang::parse))
            .or_else(|| Lang::accepted(headers))
            .unwrap_or(Lang::En)
    }

    /// The first language of `Accept-Language` (`de-AT,de;q=0.9,en;q=0.8`) Tally
    /// speaks, read in the order sent, as browsers order them.
    fn accepted(headers: &HeaderMap) -> Option<Lang> {
        headers
            .get_all(header::ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .take(20)
            .filter_map(|part| part.split(';').next()?.trim().split('-').next())
            .find_map(Lang::parse)
    }

    /// The code of `<html lang>`, the switch and the API's `?lang=`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Cs => "cs",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
            Lang::Cs => "Čeština",
        }
    }

    /// A text in this language.
    pub fn t(self, key: Key) -> &'static str {
        let [en, de, cs] = key.texts();
        match self {
            Lang::En => en,
            Lang::De => de,
            Lang::Cs => cs,
        }
    }

    /// A text with its `{name}` places filled in.
    pub fn fill(self, key: Key, args: &[(&str, &str)]) -> String {
        args.iter().fold(self.t(key).to_string(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
    }

    /// 1234567 as "1,234,567", "1.234.567" or "1 234 567" (no-break spaces).
    pub fn points(self, n: i64) -> String {
        let sep = match self {
            Lang::En => ',',
            Lang::De => '.',
            Lang::Cs => '\u{a0}',
        };
        super::values::grouped(n, sep)
    }

    /// A number of points with the word, in its grammatical number ("1 point",
    /// "3 body", "5 bodů").
    pub fn count_points(self, n: i64) -> String {
        let word = match (self, n.unsigned_abs()) {
            (Lang::En, 1) => "point",
            (Lang::En, _) => "points",
            (Lang::De, 1) => "Punkt",
            (Lang::De, _) => "Punkte",
            (Lang::Cs, 1) => "bod",
            (Lang::Cs, 2..=4) => "body",
            (Lang::Cs, _) => "bodů",
        };
        format!("{}\u{a0}{word}", self.points(n))
    }

    /// The day of an API time (RFC 3339), as this language writes dates (UTC).
    pub fn date(self, v: &Value) -> String {
        match time_of(v) {
            Some(t) => self.day(t),
            None => "—".into(),
        }
    }

    /// The day and the time of an API time (RFC 3339), in UTC.
    pub fn date_time(self, v: &Value) -> String {
        match time_of(v) {
            Some(t) => format!("{} {}", self.day(t), self.clock(t)),
            None => "—".into(),
        }
    }

    fn day(self, t: Timestamp) -> String {
        match self {
            Lang::En => t.strftime("%-d %b %Y").to_string(),
            Lang::De => t.strftime("%-d.%-m.%Y").to_string(),
            // Czech writes "5. 3. 2026", kept on one line.
            Lang::Cs => t.strftime("%-d. %-m. %Y").to_string().replace(' ', "\u{a0}"),
        }
    }

    /// The time of day, in UTC and saying so.
    pub fn clock(self, t: Timestamp) -> String {
        t.strftime("%H:%M UTC").to_string()
    }
}

fn time_of(v: &Value) -> Option<Timestamp> {
    v.as_str()?.parse().ok()
}

/// `Set-Cookie` for a chosen language: a year, every page, not a secret.
pub fn cookie(lang: Lang) -> HeaderValue {
    HeaderValue::from_static(match lang {
        Lang::En => "tally_lang=en; Path=/; Max-Age=31536000; SameSite=Lax",
        Lang::De => "tally_lang=de; Path=/; Max-Age=31536000; SameSite=Lax",
        Lang::Cs => "tally_lang=cs; Path=/; Max-Age=31536000; SameSite=Lax",
    })
}

/// The table: each key with its English, German and Czech text. A key without all
/// three does not compile. `{name}` marks a place `Lang::fill` fills in.
macro_rules! texts {
    ($($key:ident => [$en:literal, $de:literal, $cs:literal $(,)?],)*) => {
        /// A text of the member portal.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Key {
            $($key,)*
        }

        impl Key {
            fn texts(self) -> [&'static str; 3] {
                match self {
                    $(Key::$key => [$en, $de, $cs],)*
                }
            }
        }

        #[cfg(test)]
        const KEYS: &[Key] = &[$(Key::$key,)*];
    };
}

texts! {
    // The shell.
    Portal => ["Member portal", "Mitgliederbereich", "Členská sekce"],
    LanguageNav => ["Language", "Sprache", "Jazyk"],
    NavHome => ["My points", "Meine Punkte", "Moje body"],
    NavRewards => ["Rewards", "Prämien", "Odměny"],
    NavVouchers => ["Vouchers", "Gutscheine", "Poukázky"],
    NavChallenges => ["Challenges", "Challenges", "Výzvy"],
    NavHousehold => ["Household", "Haushalt", "Domácnost"],
    NavInvite => ["Invite friends", "Freunde einladen", "Pozvat přátele"],
    NavCard => ["My card", "Meine Karte", "Moje karta"],
    NotFoundTitle => ["Not found", "Nicht gefunden", "Nenalezeno"],
    TroubleTitle => ["Something went wrong", "Etwas ist schiefgelaufen", "Něco se nepovedlo"],
    BackHome => ["Back to my points", "Zurück zu meinen Punkten", "Zpět na moje body"],

    // What a refused request says.
    RefusedPoints => [
        "You do not have enough points for this yet.",
        "Dafür haben Sie noch nicht genug Punkte.",
        "Na tohle zatím nemáte dost bodů.",
    ],
    RefusedSoldOut => ["This reward is sold out.", "Diese Prämie ist vergriffen.", "Tato odměna je vyprodaná."],
    RefusedLimit => [
        "You have already redeemed this reward as often as it allows.",
        "Sie haben diese Prämie bereits so oft eingelöst, wie es möglich ist.",
        "Tuto odměnu jste už uplatnili tolikrát, kolikrát je to možné.",
    ],
    RefusedNotEligible => [
        "This is not open to you.",
        "Das steht Ihnen leider nicht offen.",
        "Tato nabídka pro vás bohužel není.",
    ],
    RefusedNotOpen => [
        "This reward is not open to you yet.",
        "Diese Prämie ist für Sie noch nicht freigegeben.",
        "Tato odměna pro vás ještě není k dispozici.",
    ],
    RefusedRewardClosed => [
        "This reward is no longer offered.",
        "Diese Prämie wird nicht mehr angeboten.",
        "Tato odměna se už nenabízí.",
    ],
    RefusedChallengeClosed => ["This challenge has ended.", "Diese Challenge ist beendet.", "Tato výzva už skončila."],
    RefusedVoucherClosed => [
        "This voucher has been used, cancelled or has expired, so it needs no new code.",
        "Dieser Gutschein wurde schon eingelöst, storniert oder ist abgelaufen; er braucht keinen neuen Code.",
        "Tato poukázka už byla použita, zrušena nebo vypršela, takže nový kód nepotřebuje.",
    ],
    RefusedTwice => [
        "This form was already sent. Reload the page and try again.",
        "Dieses Formular wurde bereits gesendet. Laden Sie die Seite neu und versuchen Sie es noch einmal.",
        "Tento formulář už byl odeslán. Načtěte stránku znovu a zkuste to ještě jednou.",
    ],
    RefusedNotFound => [
        "We could not find this. It may not be yours, or it may no longer exist.",
        "Das konnten wir nicht finden. Vielleicht gehört es nicht Ihnen oder existiert nicht mehr.",
        "Tuto položku jsme nenašli. Možná nepatří vám, nebo už neexistuje.",
    ],
    RefusedTrouble => [
        "Tally could not answer just now. Try again in a moment.",
        "Tally konnte gerade nicht antworten. Versuchen Sie es gleich noch einmal.",
        "Tally teď nemohl odpovědět. Zkuste to za chvíli znovu.",
    ],

    // Signing in.
    SignInTitle => ["Sign in", "Anmelden", "Přihlášení"],
    SignInIntro => [
        "Enter the email address or phone number you gave when you joined. We will send you a one-time code: no password needed.",
        "Geben Sie die E-Mail-Adresse oder Telefonnummer ein, die Sie beim Beitritt angegeben haben. Wir senden Ihnen einen einmaligen Code – ein Passwort brauchen Sie nicht.",
        "Zadejte e-mailovou adresu nebo telefonní číslo, které jste uvedli při registraci. Pošleme vám jednorázový kód – heslo nepotřebujete.",
    ],
    EmailOrPhone => ["Email or phone number", "E-Mail oder Telefonnummer", "E-mail nebo telefonní číslo"],
    PhoneHint => [
        "Give a phone number with its country code, starting with + (for example +420 601 123 456).",
        "Telefonnummern bitte mit Landesvorwahl und + am Anfang (zum Beispiel +49 151 23456789).",
        "Telefonní číslo zadejte s mezinárodní předvolbou a znakem + na začátku (například +420 601 123 456).",
    ],
    SendCode => ["Send me a code", "Code senden", "Poslat kód"],
    AddressMissing => [
        "Enter your email address or phone number.",
        "Bitte geben Sie Ihre E-Mail-Adresse oder Telefonnummer ein.",
        "Zadejte svůj e-mail nebo telefonní číslo.",
    ],
    AddressNotEmail => [
        "That is not an email address we can read. Check it and try again.",
        "Das ist keine gültige E-Mail-Adresse. Bitte prüfen Sie sie und versuchen Sie es erneut.",
        "Tohle není platná e-mailová adresa. Zkontrolujte ji a zkuste to znovu.",
    ],
    AddressNotPhone => [
        "That is not a phone number we can read. Give it with its country code, starting with + (for example +420 601 123 456).",
        "Diese Telefonnummer können wir nicht lesen. Bitte geben Sie sie mit Landesvorwahl und + am Anfang ein (zum Beispiel +49 151 23456789).",
        "Toto telefonní číslo nedokážeme přečíst. Zadejte ho s mezinárodní předvolbou a znakem + na začátku (například +420 601 123 456).",
    ],
    TooManyTries => [
        "Too many tries. Wait a quarter of an hour and try again.",
        "Zu viele Versuche. Bitte warten Sie eine Viertelstunde und versuchen Sie es dann erneut.",
        "Příliš mnoho pokusů. Počkejte čtvrt hodiny a zkuste to znovu.",
    ],
    CodeTitle => ["Enter your code", "Code eingeben", "Zadejte kód"],
    CodeSent => [
        "If {address} belongs to a member, we have sent a code to it.",
        "Wenn {address} zu einem Mitglied gehört, haben wir dorthin einen Code gesendet.",
        "Pokud {address} patří členovi programu, poslali jsme tam kód.",
    ],
    CodeLabel => ["The 6-digit code", "Der 6-stellige Code", "Šestimístný kód"],
    CodeHint => ["The code is valid for 10 minutes.", "Der Code gilt 10 Minuten.", "Kód platí 10 minut."],
    SignIn => ["Sign in", "Anmelden", "Přihlásit se"],
    OtherAddress => [
        "Use another address, or get a new code",
        "Andere Adresse verwenden oder neuen Code anfordern",
        "Použít jinou adresu nebo si vyžádat nový kód",
    ],
    CodeNotSent => [
        "The code could not be sent: {reason}",
        "Der Code konnte nicht gesendet werden: {reason}",
        "Kód se nepodařilo odeslat: {reason}",
    ],
    CodeWrong => [
        "That code is not right, or it has expired. Check it, or ask for a new one.",
        "Dieser Code ist falsch oder abgelaufen. Bitte prüfen Sie ihn oder fordern Sie einen neuen an.",
        "Tento kód není správný, nebo už vypršel. Zkontrolujte ho, nebo si vyžádejte nový.",
    ],

    // Home: points, tier, membership.
    HomeTitle => ["My points", "Meine Punkte", "Moje body"],
    PointsHeading => ["Your points", "Ihre Punkte", "Vaše body"],
    AvailableLabel => ["points you can spend now", "Punkte, die Sie jetzt einlösen können", "bodů k okamžitému použití"],
    PendingLabel => ["points pending", "vorgemerkte Punkte", "bodů čeká na připsání"],
    ReservedLabel => [
        "points set aside for your vouchers",
        "Punkte für Ihre Gutscheine reserviert",
        "bodů rezervovaných pro vaše poukázky",
    ],
    LifetimeLabel => ["points earned since you joined", "Punkte seit Ihrem Beitritt gesammelt", "bodů získaných od registrace"],
    PendingWhen => ["When pending points become yours", "Wann vorgemerkte Punkte verfügbar werden", "Kdy vám čekající body přibudou"],
    PendingOn => ["{points} from {date}", "{points} ab dem {date}", "{points} od {date}"],
    PendingExplain => [
        "Pending points become available when the partner's return period for the purchase has passed.",
        "Vorgemerkte Punkte werden verfügbar, sobald die Rückgabefrist des Partners für den Einkauf abgelaufen ist.",
        "Čekající body budete moci použít, jakmile uplyne lhůta partnera pro vrácení zboží.",
    ],
    ExpiringSoon => ["Expiring soon", "Bald verfallende Punkte", "Brzy propadnou"],
    ExpiresOn => ["{points}, valid until {date}", "{points}, gültig bis {date}", "{points}, platnost do {date}"],
    ExpiryRule => [
        "Points expire {months} months after the purchase that earned them.",
        "Punkte verfallen {months} Monate nach dem Einkauf, mit dem Sie sie gesammelt haben.",
        "Body propadají {months} měs. po nákupu, za který jste je získali.",
    ],
    SpendPoints => ["See what you can redeem", "Sehen, was Sie einlösen können", "Co můžete za body získat"],
    TierHeading => ["Your tier", "Ihr Status", "Vaše úroveň"],
    TierNow => ["Your tier: {tier}", "Ihr Status: {tier}", "Vaše úroveň: {tier}"],
    TierPerks => ["Your perks", "Ihre Vorteile", "Vaše výhody"],
    TierNone => ["You have no tier yet.", "Sie haben noch keinen Status.", "Zatím nemáte žádnou úroveň."],
    TierMissing => [
        "{missing} more by {date} to reach {tier}.",
        "Ihnen fehlen bis zum {date} noch {missing}, um {tier} zu erreichen.",
        "Do {date} vám chybí {missing} k úrovni {tier}.",
    ],
    TierProgress => ["Progress to {tier}", "Fortschritt zu {tier}", "Postup k úrovni {tier}"],
    TierTop => ["You have reached the highest tier.", "Sie haben den höchsten Status erreicht.", "Dosáhli jste nejvyšší úrovně."],
    TierManualUntil => [
        "Your tier was set for you until {date}.",
        "Ihr Status wurde bis zum {date} für Sie festgelegt.",
        "Vaše úroveň vám byla nastavena do {date}.",
    ],
    TierReview => [
        "Your tier is next reviewed on {date}.",
        "Ihr Status wird am {date} neu berechnet.",
        "Vaše úroveň se znovu posoudí {date}.",
    ],
    MembershipHeading => ["Your membership", "Ihre Mitgliedschaft", "Vaše členství"],
    MembershipPlan => ["Plan: {plan}", "Tarif: {plan}", "Tarif: {plan}"],
    MembershipTrial => ["Trial until {date}.", "Testphase bis zum {date}.", "Zkušební období do {date}."],
    MembershipPastDue => ["Your payment is overdue.", "Ihre Zahlung ist überfällig.", "Vaše platba je po splatnosti."],
    MembershipRenews => ["Renews on {date}.", "Verlängert sich am {date}.", "Obnoví se {date}."],
    MembershipNone => ["You have no paid membership.", "Sie haben keine bezahlte Mitgliedschaft.", "Nemáte placené členství."],

    // History.
    RecentHistory => ["Recent history", "Letzte Bewegungen", "Poslední pohyby"],
    MoreHistory => ["Show more history", "Mehr anzeigen", "Zobrazit další"],
    HistoryTitle => ["Your history", "Ihr Punkteverlauf", "Historie bodů"],
    HistoryHeading => ["All your points, newest first", "Alle Buchungen, die neuesten zuerst", "Všechny pohyby, od nejnovějších"],
    OlderHistory => ["Older entries", "Ältere Einträge", "Starší záznamy"],
    HistoryEmpty => ["Nothing here yet.", "Hier ist noch nichts.", "Zatím tu nic není."],
    ColumnDate => ["Date", "Datum", "Datum"],
    ColumnWhat => ["What", "Was", "Co"],
    ColumnPoints => ["Points", "Punkte", "Body"],
    KindEarn => ["Earned", "Gesammelt", "Získáno"],
    KindEarnPending => ["Earned, pending", "Gesammelt, vorgemerkt", "Získáno, čeká na připsání"],
    KindMature => ["Now available", "Jetzt verfügbar", "Nyní k dispozici"],
    KindRedeem => ["Paid with points", "Mit Punkten bezahlt", "Zaplaceno body"],
    KindExpire => ["Expired", "Verfallen", "Propadlo"],
    KindReturnReversal => ["Taken back for a return", "Für eine Rückgabe abgezogen", "Odečteno kvůli vrácení zboží"],
    KindReturnRefund => ["Given back for a return", "Für eine Rückgabe erstattet", "Vráceno kvůli vrácení zboží"],
    KindWalletSplit => [
        "From a shared wallet that closed",
        "Aus einem aufgelösten gemeinsamen Konto",
        "Ze zrušeného společného účtu",
    ],
    KindRewardReserve => ["Set aside for a voucher", "Für einen Gutschein reserviert", "Rezervováno pro poukázku"],
    KindRewardUse => ["Voucher used", "Gutschein eingelöst", "Poukázka použita"],
    KindRewardRelease => ["Voucher points back", "Gutscheinpunkte zurück", "Body z poukázky vráceny"],
    KindRewardForfeit => ["Voucher expired unused", "Gutschein ungenutzt verfallen", "Poukázka propadla nevyužitá"],
    KindDonation => ["Donated", "Gespendet", "Darováno"],
    KindTransferOut => ["Sent to another member", "An ein anderes Mitglied gesendet", "Posláno jinému členovi"],
    KindTransferIn => ["Received from another member", "Von einem anderen Mitglied erhalten", "Přijato od jiného člena"],
    KindExchangeOut => ["Exchanged to another programme", "In ein anderes Programm getauscht", "Převedeno do jiného programu"],
    KindExchangeConfirm => ["Exchange confirmed", "Tausch bestätigt", "Převod potvrzen"],
    KindExchangeRefund => ["Exchange refused, points back", "Tausch abgelehnt, Punkte zurück", "Převod odmítnut, body vráceny"],
    KindExchangeIn => ["From another programme", "Aus einem anderen Programm", "Z jiného programu"],

    // Rewards.
    RewardsTitle => ["Rewards", "Prämien", "Odměny"],
    RewardsYouHave => ["You have {points} to spend.", "Sie haben {points} zum Einlösen.", "K utracení máte {points}."],
    RewardsCanRedeem => ["You can redeem", "Das können Sie einlösen", "Můžete uplatnit"],
    RewardsNoneYet => ["Nothing yet: keep collecting points.", "Noch nichts – sammeln Sie weiter Punkte.", "Zatím nic – sbírejte body dál."],
    RewardsNotYet => ["Not yet for you", "Noch nicht für Sie", "Zatím ne pro vás"],
    RewardAt => ["at {partner}", "bei {partner}", "u partnera {partner}"],
    RewardOn => ["On {date}", "Am {date}", "Termín: {date}"],
    RewardLeft => ["{count} left", "Noch {count} verfügbar", "Zbývá: {count}"],
    RedeemButton => ["Redeem {reward} for {points}", "{reward} für {points} einlösen", "Uplatnit {reward} za {points}"],
    RewardVoucher => ["voucher", "Gutschein", "poukázka"],
    RewardProduct => ["product", "Produkt", "produkt"],
    RewardExperience => ["experience", "Erlebnis", "zážitek"],
    RewardEarlyAccess => ["early access", "früher Zugang", "přednostní přístup"],
    RewardMerchandise => ["merchandise", "Fanartikel", "zboží"],
    RewardDonation => ["donation", "Spende", "dar"],
    YourVouchers => ["Your vouchers", "Ihre Gutscheine", "Vaše poukázky"],

    // Vouchers.
    VouchersTitle => ["Your vouchers", "Ihre Gutscheine", "Vaše poukázky"],
    VouchersNone => ["You have not redeemed anything yet.", "Sie haben noch nichts eingelöst.", "Zatím jste nic neuplatnili."],
    VouchersSeeRewards => ["See the rewards", "Zu den Prämien", "Prohlédnout odměny"],
    VouchersCaption => [
        "Your redemptions, newest first",
        "Ihre Einlösungen, die neuesten zuerst",
        "Vaše uplatněné odměny, od nejnovějších",
    ],
    ColumnReward => ["Reward", "Prämie", "Odměna"],
    ColumnStatus => ["Status", "Status", "Stav"],
    ColumnValidUntil => ["Valid until", "Gültig bis", "Platí do"],
    OlderVouchers => ["Older vouchers", "Ältere Gutscheine", "Starší poukázky"],
    StatusIssued => ["Ready to use", "Einlösbar", "Připraveno k použití"],
    StatusUsed => ["Used", "Eingelöst", "Použito"],
    StatusCancelled => ["Cancelled, points back", "Storniert, Punkte zurück", "Zrušeno, body vráceny"],
    StatusExpired => ["Expired, points back", "Abgelaufen, Punkte zurück", "Vypršelo, body vráceny"],
    StatusForfeited => ["Expired", "Abgelaufen", "Propadlo"],
    StatusDonated => ["Donated", "Gespendet", "Darováno"],
    StatusUnknown => ["Unknown", "Unbekannt", "Neznámý"],
    VoucherTitle => ["Your voucher", "Ihr Gutschein", "Vaše poukázka"],
    VoucherCodeOnce => [
        "For your safety the code was shown only when you redeemed, and Tally keeps no copy of it. If you no longer have it, get a new one here.",
        "Zu Ihrer Sicherheit wurde der Code nur beim Einlösen angezeigt, und Tally bewahrt keine Kopie auf. Wenn Sie ihn nicht mehr haben, holen Sie sich hier einen neuen.",
        "Kvůli vaší bezpečnosti se kód zobrazil jen při uplatnění a Tally si jeho kopii neuchovává. Pokud ho už nemáte, vyžádejte si zde nový.",
    ],
    VoucherNewCode => ["Show a new code", "Neuen Code anzeigen", "Zobrazit nový kód"],
    VoucherNewCodeHint => ["The old code stops working.", "Der alte Code wird dann ungültig.", "Starý kód tím přestane platit."],
    AllVouchers => ["All your vouchers", "Alle Ihre Gutscheine", "Všechny vaše poukázky"],
    VoucherUseAt => ["Use at", "Einlösbar bei", "Uplatníte u"],
    VoucherCharity => ["Given to", "Gespendet an", "Příjemce daru"],
    VoucherCodeEnds => ["Code ends in", "Code endet auf", "Kód končí na"],
    VoucherShownOnce => [
        "Here is your code. It is shown only now: write it down, take a screenshot or keep this page open.",
        "Hier ist Ihr Code. Er wird nur jetzt angezeigt: Schreiben Sie ihn auf, machen Sie einen Screenshot oder lassen Sie diese Seite geöffnet.",
        "Tady je váš kód. Zobrazí se jen teď: opište si ho, udělejte si snímek obrazovky nebo nechte tuto stránku otevřenou.",
    ],
    VoucherYourCode => [
        "Show this code at the till, or read it out:",
        "Zeigen Sie diesen Code an der Kasse oder lesen Sie ihn vor:",
        "Ukažte tento kód u pokladny nebo ho nadiktujte:",
    ],
    VoucherQrLabel => ["QR code of your voucher code", "QR-Code Ihres Gutscheincodes", "QR kód vaší poukázky"],
    VoucherDetails => ["Voucher details", "Details zum Gutschein", "Podrobnosti poukázky"],
    PointsLeft => ["You have {points} left to spend.", "Sie haben noch {points} zum Einlösen.", "Můžete ještě utratit {points}."],

    // Household.
    HouseholdTitle => ["Household", "Haushalt", "Domácnost"],
    HouseholdNone => [
        "You do not share points with a household or a company. The owner of a household can invite you with a code.",
        "Sie teilen keine Punkte mit einem Haushalt oder einer Firma. Wer einen Haushalt verwaltet, kann Sie mit einem Code einladen.",
        "Nesdílíte body s žádnou domácností ani firmou. Správce domácnosti vás může pozvat pomocí kódu.",
    ],
    You => ["You", "Sie", "Vy"],
    AMember => ["A member", "Ein Mitglied", "Člen programu"],
    WalletHousehold => [
        "Household: its members collect and spend points together.",
        "Haushalt: Die Mitglieder sammeln und nutzen Punkte gemeinsam.",
        "Domácnost: členové sbírají a utrácejí body společně.",
    ],
    WalletBusiness => ["Business account", "Firmenkonto", "Firemní účet"],
    WalletAvailable => ["points to spend together", "gemeinsam nutzbare Punkte", "bodů ke společnému využití"],
    WalletCanSpend => ["You may pay with these points.", "Sie dürfen mit diesen Punkten bezahlen.", "Těmito body smíte platit."],
    WalletCannotSpend => [
        "You may not pay with these points.",
        "Sie dürfen mit diesen Punkten nicht bezahlen.",
        "Těmito body platit nesmíte.",
    ],
    WalletEarnsInto => [
        "Your purchases earn points into it.",
        "Ihre Einkäufe sammeln Punkte auf dieses Konto.",
        "Vaše nákupy připisují body na tento účet.",
    ],
    WalletNoEarn => [
        "Your purchases earn points for you alone.",
        "Ihre Einkäufe sammeln Punkte nur für Sie.",
        "Vaše nákupy připisují body jen vám.",
    ],
    WalletDefault => [
        "Used at the till unless you say otherwise.",
        "Wird an der Kasse verwendet, wenn Sie nichts anderes sagen.",
        "U pokladny se použije, pokud neřeknete jinak.",
    ],
    WalletPeople => ["Who shares {wallet}", "Wer {wallet} teilt", "Kdo sdílí {wallet}"],
    ColumnName => ["Name", "Name", "Jméno"],
    ColumnRole => ["Role", "Rolle", "Role"],
    ColumnSince => ["Since", "Seit", "Od"],
    RoleOwner => ["Owner", "Verwaltung", "Správce"],
    RoleMember => ["Member", "Mitglied", "Člen"],
    RoleContact => ["Contact", "Ansprechperson", "Kontaktní osoba"],

    // Invitations.
    InviteTitle => ["Invite friends", "Freunde einladen", "Pozvat přátele"],
    InviteLinkHeading => ["Your link", "Ihr Link", "Váš odkaz"],
    InviteIntro => [
        "Share this link with friends. Those who join through it count as your invitations, and their first purchase can earn you points.",
        "Teilen Sie diesen Link mit Freunden. Wer sich darüber anmeldet, zählt als Ihre Einladung, und der erste Einkauf kann Ihnen Punkte bringen.",
        "Sdílejte tento odkaz s přáteli. Kdo se přes něj zaregistruje, počítá se jako vaše pozvánka a jeho první nákup vám může přinést body.",
    ],
    InviteQrLabel => ["QR code of your invitation link", "QR-Code Ihres Einladungslinks", "QR kód odkazu s pozvánkou"],
    InviteCode => ["Your invitation code:", "Ihr Einladungscode:", "Váš kód pozvánky:"],
    InviteCodeOnly => [
        "Friends who join can give your invitation code:",
        "Freunde können beim Beitritt Ihren Einladungscode angeben:",
        "Přátelé mohou při registraci uvést váš kód pozvánky:",
    ],
    InvitedHeading => ["Friends you invited", "Eingeladene Freunde", "Pozvaní přátelé"],
    InvitedCount => ["friends joined", "Freunde beigetreten", "registrovaných přátel"],
    InvitedConverted => ["made a first purchase", "haben zum ersten Mal eingekauft", "už nakoupili"],
    InvitedPoints => ["points earned", "Punkte erhalten", "získaných bodů"],
    InvitedNone => [
        "No one has joined with your link yet.",
        "Über Ihren Link ist noch niemand beigetreten.",
        "Přes váš odkaz se zatím nikdo nezaregistroval.",
    ],
    InvitedCaption => [
        "Friends you invited, newest first",
        "Eingeladene Freunde, die neuesten zuerst",
        "Pozvaní přátelé, od nejnovějších",
    ],
    ColumnJoined => ["Joined", "Beigetreten am", "Registrace"],
    ReferralPending => ["Joined, no purchase yet", "Beigetreten, noch kein Einkauf", "Registrace, zatím bez nákupu"],
    ReferralConverted => ["First purchase made", "Erster Einkauf erfolgt", "První nákup proveden"],
    ReferralDeclined => ["Did not count", "Nicht gewertet", "Nezapočítáno"],
    ReferralReversed => ["Purchase returned", "Einkauf zurückgegeben", "Nákup vrácen"],
    ReferralSameHousehold => ["same household", "gleicher Haushalt", "stejná domácnost"],
    ReferralMonthlyLimit => ["monthly limit reached", "Monatslimit erreicht", "dosažen měsíční limit"],

    // Challenges and badges.
    ChallengesTitle => ["Challenges", "Challenges", "Výzvy"],
    ChallengesHeading => ["Your challenges", "Ihre Challenges", "Vaše výzvy"],
    ChallengesNone => ["No challenges are running just now.", "Gerade laufen keine Challenges.", "Právě neprobíhají žádné výzvy."],
    ChallengeJoined => ["You are taking part now. Good luck!", "Sie nehmen jetzt teil. Viel Erfolg!", "Teď se účastníte. Hodně štěstí!"],
    ChallengeDates => ["From {from} to {to}", "Vom {from} bis zum {to}", "Od {from} do {to}"],
    ProgressOf => ["{done} of {target}", "{done} von {target}", "{done} z {target}"],
    UnitPurchases => ["purchases", "Einkäufen", "nákupů"],
    UnitEvents => ["activities", "Aktivitäten", "aktivit"],
    UnitPartners => ["partners", "Partnern", "partnerů"],
    UnitIndustries => ["kinds of shop", "Branchen", "oborů"],
    ChallengeProgress => ["Progress in {challenge}", "Fortschritt bei {challenge}", "Postup ve výzvě {challenge}"],
    ChallengeCompleted => ["Completed on {date}", "Geschafft am {date}", "Splněno {date}"],
    ChallengeTakingPart => ["You are taking part.", "Sie nehmen teil.", "Účastníte se."],
    ChallengeJoin => ["Join {challenge}", "Bei {challenge} mitmachen", "Zapojit se do výzvy {challenge}"],
    ChallengeBadge => ["Badge to earn: {badge}", "Abzeichen: {badge}", "Odznak za splnění: {badge}"],
    BadgesHeading => ["Your badges", "Ihre Abzeichen", "Vaše odznaky"],
    BadgesNone => ["No badges yet.", "Noch keine Abzeichen.", "Zatím žádné odznaky."],
    BadgeEarnedOn => ["earned on {date}", "erhalten am {date}", "získáno {date}"],

    // The card.
    CardTitle => ["My card", "Meine Karte", "Moje karta"],
    CardIntro => [
        "At the till, show this code instead of giving your phone number: the cashier scans it and the points are yours.",
        "Zeigen Sie an der Kasse diesen Code, statt Ihre Telefonnummer zu nennen: Die Kasse scannt ihn, und die Punkte gehören Ihnen.",
        "U pokladny ukažte tento kód místo diktování telefonního čísla: pokladní ho naskenuje a body se připíšou vám.",
    ],
    CardQrLabel => ["Your personal QR code for the till", "Ihr persönlicher QR-Code für die Kasse", "Váš osobní QR kód pro pokladnu"],
    CardValid => ["Valid until {time} ({minutes} minutes).", "Gültig bis {time} ({minutes} Minuten).", "Platí do {time} ({minutes} min)."],
    CardRefresh => ["Show a fresh code", "Neuen Code anzeigen", "Zobrazit nový kód"],
    CardTextHeading => ["If the scanner cannot read it", "Wenn der Scanner ihn nicht lesen kann", "Když ho čtečka nepřečte"],
    CardTextIntro => [
        "The cashier can type this instead:",
        "Die Kasse kann stattdessen diesen Text eingeben:",
        "Pokladní může místo toho zadat tento text:",
    ],
    CardSafety => [
        "The code changes each time you open this page and works only for a few minutes, so a photo of it is of no use to anyone later.",
        "Der Code ändert sich bei jedem Öffnen dieser Seite und gilt nur wenige Minuten – ein Foto davon nützt später niemandem.",
        "Kód se mění při každém otevření této stránky a platí jen několik minut, takže jeho fotka později nikomu k ničemu nebude.",
    ],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(text: &str) -> Vec<&str> {
        let mut out: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn every_text_is_written_with_the_same_places_in_each_language() {
        for key in KEYS {
            let [en, de, cs] = key.texts();
            for text in [en, de, cs] {
                assert!(!text.trim().is_empty(), "{key:?} has an empty text");
            }
            assert_eq!(places(en), places(de), "{key:?}: German places differ");
            assert_eq!(places(en), places(cs), "{key:?}: Czech places differ");
        }
    }

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn the_query_wins_then_the_cookie_then_the_browser() {
        let browser = headers(&[(header::ACCEPT_LANGUAGE, "fr-FR,cs;q=0.9,de;q=0.8")]);
        assert_eq!(Lang::from_request(&browser, None), Lang::Cs);
        assert_eq!(Lang::from_request(&browser, Some("de")), Lang::De);
        assert_eq!(Lang::from_request(&browser, Some("fr")), Lang::Cs);
        let chosen = headers(&[
            (header::ACCEPT_LANGUAGE, "cs"),
            (header::COOKIE, "tally_pre=abc; tally_lang=de"),
        ]);
        assert_eq!(Lang::from_request(&chosen, None), Lang::De);
        assert_eq!(Lang::from_request(&chosen, Some("en")), Lang::En);
        assert_eq!(Lang::from_request(&HeaderMap::new(), None), Lang::En);
        let unknown = headers(&[(header::ACCEPT_LANGUAGE, "fr, ja")]);
        assert_eq!(Lang::from_request(&unknown, None), Lang::En);
    }

    #[test]
    fn numbers_and_dates_are_written_as_each_language_writes_them() {
        assert_eq!(Lang::En.points(1234567), "1,234,567");
        assert_eq!(Lang::De.points(1234567), "1.234.567");
        assert_eq!(Lang::Cs.points(-1234), "−1\u{a0}234");
        assert_eq!(Lang::Cs.count_points(3), "3\u{a0}body");
        assert_eq!(Lang::Cs.count_points(5), "5\u{a0}bodů");
        assert_eq!(Lang::En.count_points(1), "1\u{a0}point");
        let t = Value::from("2026-03-05T14:03:00Z");
        assert_eq!(Lang::En.date(&t), "5 Mar 2026");
        assert_eq!(Lang::De.date(&t), "5.3.2026");
        assert_eq!(Lang::Cs.date(&t), "5.\u{a0}3.\u{a0}2026");
        assert_eq!(Lang::De.date_time(&t), "5.3.2026 14:03 UTC");
        assert_eq!(Lang::En.date(&Value::Null), "—");
    }

    #[test]
    fn places_are_filled() {
        assert_eq!(
            Lang::De.fill(Key::RedeemButton, &[("reward", "Kaffee"), ("points", "300 Punkte")]),
            "Kaffee für 300 Punkte einlösen"
        );
    }
}
