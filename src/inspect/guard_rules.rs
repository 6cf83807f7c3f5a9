//! The built-in guard rules, per family and language, as phrase patterns over folded text
//! (see guard_fold: no accents, lower case, confusables folded; patterns are folded the same
//! way, so they are written with their accents).
//!
//! A pattern is a sequence of word groups: `ignore|disregard _40 previous|prior _20 instructions`.
//! Each alternative is a word stem matched at the start of a word (in Chinese, Japanese, Korean
//! and Arabic at any character), so `ignor` matches "ignore" and "ignoring"; a trailing `$`
//! asks for the whole word. `_N` allows up to N characters between two groups, never across a
//! sentence end (. ! ? 。 ؟ ।). Context, not words, decides: a pattern needs the verb and its
//! object ("ignore" + "previous instructions", "developer mode" + "no restrictions"), so
//! "ignore the compiler warnings", "you are now my writing coach" and "enable developer mode on
//! my Android" pass.

pub(crate) struct Entry {
    pub family: &'static str,
    pub patterns: &'static [&'static str],
}

pub(crate) const FAMILIES: [&str; 5] = [
    "instruction_override",
    "system_prompt_extraction",
    "role_hijack",
    "jailbreak",
    "data_exfiltration",
];

const IO: &str = "instruction_override";
const PE: &str = "system_prompt_extraction";
const RH: &str = "role_hijack";
const JB: &str = "jailbreak";
const EX: &str = "data_exfiltration";

/// Markdown images that carry data out in their URL (regexes, tried only when "![" occurs).
pub(crate) const EXFIL_REGEXES: [&str; 2] = [
    r"!\[[^\]]{0,200}\]\(https?://[^)]{0,300}\{",
    r"!\[[^\]]{0,200}\]\(https?://[^)]{0,300}(\?|&)(q|data|d|c|secret|token)=",
];

pub(crate) const ENTRIES: &[Entry] = &[
    // ---------------------------------------------------------------- English
    Entry {
        family: IO,
        patterns: &[
            "ignor|disregard|forget|skip|bypass|overrid|overrul|discard|abandon|neglect|stop follow|do not follow|don't follow|dont follow|do not obey|stop obey _40 previous|prior|preceding|above|earlier|initial|original|system|existing|foregoing|former|old$|all$|your$|any$ _20 instruction|prompt|rules|directions|directive|guideline|guidance|programming|constraint|orders|command",
            "new$|updated|real$|actual|true$|revised _0 instructions|system prompt|rules$|orders|directives _2 :",
            "forget _0 everything|all$|what$ _3 you were told|you have been told|you've been told|you were given|you were instructed|above$|before$|prior$|previously|earlier",
            "instructions|rules$|directions|guidelines|prompt _20 are void|is void|are null|are cancel|are revoked|are obsolete|are invalid|no longer valid|no longer apply",
            "these _15 replace|supersede|override _10 previous|prior|earlier|above|original|system",
            "ignor|disregard|forget|skip|bypass|overrid|discard _20 instruction|rules$|directions|directive|guideline|prompt _30 above$|before$|earlier|previously|so far|until now|at the start",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "reveal|show|print|display|output|repeat|recite|leak|dump|tell me|give me|copy|paste|write out|spell out|share|expose|list$|disclose|return _50 system|initial|hidden|original|secret|internal|developer|full$|first$|starting|confidential|pre-prompt|preprompt|underlying _12 prompt|instruction|message|rules$|configuration|directive|guideline",
            "what$ _3 is your|are your|was your|were your|is its|are its _15 system|initial|hidden|original|secret|internal|developer|first$ _2 prompt|instruction|message|rules$|configuration",
            "what$ _3 were the|are the|is the|was the _2 initial|hidden|original|secret|internal|first$ _2 prompt|instruction|message|rules$|configuration _30 you$|?",
            "repeat _30 above$|before$|prior$|preceding",
            "prompt|instructions|message _40 verbatim|word for word|word-for-word",
            "verbatim|word for word|word-for-word _40 prompt|instructions|message",
            "beginning|starting|start$ _1 with$|from$ _3 you are$",
            "system prompt|system message|system instructions|initial instructions|hidden instructions|secret instructions _30 code block|verbatim|exactly|in full|here$",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "you are now|you're now|you r now|you are no longer|you're no longer|you are henceforth _25 dan$|stan$|dude$|unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|unbound|unlimited|amoral|unethical|free$|bound$|restricted|limited|required|obligated|subject|controlled",
            "act as|act like|behave as|behave like|respond as|respond like|answer as|answer like|roleplay as|role-play as|role play as|pose as|speak as|speak like _12 unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|unbound|amoral|unethical|unlimited|malicious",
            "do anything now",
            "dan$ _30 mode$|jailbreak|do anything",
            "pretend _50 no$|without|free of|free from _6 restriction|rules$|limits|limitation|filters|guideline|boundar|ethics|morals",
            "from now on _40 unrestricted|unfiltered|uncensored|jailbroken|evil|no restriction|no rules|no filters|no limits|without restriction|without any restriction|without rules|without filters|without limits|ignore|never refuse|dan$",
            "your new _2 role|persona|identity|name _40 unrestricted|unfiltered|uncensored|jailbroken|evil|never refuse|no restriction|no rules|no limits",
            "evil|malicious|unrestricted|uncensored|amoral|jailbroken _2 ai$|assistant|chatbot|model|bot$ _40 never refuse|no restriction|no rules|no limits|ignores its|ignores all|ignores your|ignores any",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "jailbreak|jailbroken|unrestricted|dan$|god$|evil|chaos|unfiltered|uncensored|no-limit|no limit _1 mode$ _10 on$|enabled|activated|active|engaged|unlocked",
            "enable|activate|enter$|turn on|switch to|engage|unlock _10 jailbreak|unrestricted|dan$|god$|evil|unfiltered|uncensored _1 mode$",
            "developer|dev$|debug|admin$|sudo|maintenance _1 mode$ _60 ignore|no restriction|no content restriction|no filters|no limits|no polic|no content polic|no rules|no guideline|without restriction|without any restriction|without filters|without any filters|without limits|without censorship|without rules|unrestricted|uncensored|unfiltered|bypass|all content polic|all polic|all rules",
            "respond|answer|reply|talk|write|speak _25 without|with no|no$|free of|ignoring _20 filter|restriction|guideline|limits|limitation|censorship|polic|boundar",
            "freed|released|liberated|unshackled|free$ _1 from|of$ _25 limitation|restriction|rules$|guideline|constraint|programming|filters",
            "bypass|circumvent|disable|evade|override|get around|turn off|switch off|remove|deactivate|ignore _6 your$|its$|the ai|the model|the assistant _12 filter|guardrail|safeguard|restriction|censorship|alignment|moderation|guideline|polic",
            "no$ _1 ethical|moral _1 limit|boundar|restriction|constraint|guideline",
        ],
    },
    Entry {
        family: EX,
        patterns: &[
            "send|post$|upload|exfiltrat|forward|transmit|leak|email _40 conversation|chat history|secret|credential|password|api key|access token|system prompt|user data|all the data|all data _40 http|www.|@",
            "print|list$|dump|show|reveal|output _20 environment variable|env var|api keys|credentials|secrets|passwords|access tokens|private keys",
        ],
    },
    // ---------------------------------------------------------------- German
    Entry {
        family: IO,
        patterns: &[
            "ignorier|missacht|vergiss|vergessen|übergeh|umgeh|überspring|beachte nicht|hör auf _40 vorherig|vorig|bisherig|obig|ursprünglich|früher|alle$|deine|system|anfänglich _25 anweisung|instruktion|regeln|richtlinie|vorgabe|befehl|prompt|systemanweisung",
            "neue _0 anweisungen|regeln|befehle _2 :",
            "ignorier|missacht|vergiss|übergeh _20 anweisung|regeln|richtlinie|vorgabe _20 oben|zuvor|vorher|bisher",
            "vergiss _0 alles _3 was _25 gesagt|aufgetragen|beigebracht|gelernt",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "zeig|gib|nenn|verrat|wiederhol|druck|offenbar|enthüll|schreib|kopier _40 systemprompt|system-prompt|system prompt|systemanweisung|systemnachricht",
            "zeig|gib|nenn|verrat|wiederhol|druck|offenbar|enthüll|schreib|kopier _40 ursprünglich|versteckt|geheim|anfänglich|initial|intern|verborgen _2 anweisung|prompt|vorgabe|systemanweisung",
            "wie lauten|was sind|was waren _3 deine|die$|ihre _2 ursprünglich|anfänglich|versteckt|geheim|system|initial|erst _2 anweisung|prompt|vorgabe",
            "wiederhol _25 text|wörter|worte|inhalt|nachricht _15 oben|darüber|davor",
            "beginnend mit _3 du bist",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "du bist _2 jetzt|nun$|ab jetzt|ab sofort|nicht mehr|nicht länger _30 dan$|ohne einschränkung|ohne regeln|ohne grenzen|ohne filter|ohne zensur|ohne beschränkung|unzensiert|uneingeschränkt|gebunden|böse|frei von",
            "ab jetzt|ab sofort|von nun an|ab heute _1 bist du _40 unzensiert|ohne regeln|ohne einschränkung|ohne beschränkung|uneingeschränkt|böse|dan$",
            "tu so|tue so|stell dir vor _3 als _40 ohne|frei von|keine _25 beschränkung|einschränkung|regeln|grenzen|filter|richtlinien",
            "spiel|übernimm _5 rolle _30 böse|unzensiert|uneingeschränkt|ohne regeln|nie ablehnt|niemals ablehnt",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "entwicklermodus|entwickler-modus|jailbreak-modus|jailbreakmodus|dan-modus|gottmodus|gott-modus _60 ohne einschränkung|ohne regeln|ohne grenzen|ohne filter|ohne zensur|ignorier|keine regeln|uneingeschränkt|inhaltsrichtlinien|richtlinien",
            "jailbreak|dan$|gott _1 modus _5 an$|aktiv|ein$|eingeschaltet",
            "antworte|antwortest|reagiere|schreib _20 ohne _20 sicherheitsfilter|filter|einschränkung|zensur|moralisch|ethisch|regeln|grenzen",
            "umgeh|deaktivier|ignorier|schalte _15 deine|alle$|die$ _2 sicherheitsfilter|filter|sicherheitsvorkehrung|schutzmechanism|einschränkung|zensur",
        ],
    },
    // ---------------------------------------------------------------- French
    Entry {
        family: IO,
        patterns: &[
            "ignore|ignorez|ignorer|oublie|oubliez|oublier|ne tiens pas compte|ne tenez pas compte|fais abstraction|faites abstraction|outrepasse|neglige _40 precedent|anterieur|ci-dessus|plus haut|initia|origin|systeme|toutes|tous$|tes$|vos$ _25 instruction|consigne|regles|directive|ordres|prompt|message systeme",
            "nouvelles _0 instructions|consignes|regles _2 :",
            "oublie|oubliez _0 tout _0 ce qu _15 dit|appris|demande",
            "ne tiens pas compte|ne tenez pas compte|ignore|ignorez|oublie|oubliez _20 regles|instructions|consignes _20 ci-dessus|plus haut|precedentes|d'avant",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "revele|revelez|montre|affiche|repete|repetez|imprime|donne|dis-moi|dites-moi|divulgue|copie _40 prompt systeme|prompt du systeme|message systeme|message du systeme|instructions initiales|instructions cachees|instructions secretes|instructions d'origine|instructions originales|instructions systeme|instructions internes|consignes initiales|consignes cachees|consignes secretes|consignes d'origine|instructions caches",
            "quel _10 sont|etaient|est$ _3 tes$|vos$|les$ _2 instructions|consignes|regles _3 initiales|d'origine|originales|cachees|secretes|systeme",
            "repete|repetez _3 le texte _3 ci-dessus|plus haut|precedent",
            "en commencant par _4 tu es$|vous etes",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "tu es$|vous etes _1 maintenant|desormais|a present _30 dan$|sans restriction|sans aucune restriction|sans regle|sans limite|sans filtre|sans censure|non censure|libre$|malveillant|malefique",
            "a partir de maintenant|desormais|des maintenant _3 tu es$|vous etes|tu seras _40 non censure|sans regle|sans aucune regle|sans restriction|sans aucune restriction|sans limite|sans filtre|malveillant|malefique|dan$",
            "fais comme si|faites comme si _3 tu etais|vous etiez _40 sans _8 restriction|limite|regle|filtre|contrainte",
            "tu n'es plus|vous n'etes plus _1 lie|tenu|soumis|contraint",
            "joue|jouez|agis|agissez _15 le role|comme$ _30 malefique|malveillant|non censure|sans regle|sans aucune regle|sans restriction|ne refuse jamais",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "mode _1 developpeur|jailbreak|dan$|dieu$|sans restriction _60 sans restriction|sans aucune restriction|sans regle|sans limite|sans filtre|sans censure|ignore|plus de regles|aucune regle|politiques de contenu|politique de contenu",
            "mode _1 jailbreak|dan$|dieu$ _5 active|actif|enclenche|on$",
            "reponds|repondez|repondre|ecris|ecrivez _20 sans _20 filtre|restriction|censure|limite|regles|garde-fou",
            "contourne|contournez|desactive|desactivez|ignore|ignorez _10 tes$|vos$|les$|tous les _2 filtres|garde-fous|restrictions|protections|regles de securite",
        ],
    },
    // ---------------------------------------------------------------- Spanish
    Entry {
        family: IO,
        patterns: &[
            "ignora|ignore|ignorar|olvida|olvide|olvidar|no hagas caso|no haga caso|haz caso omiso|omite|omita|descarta|pasa por alto|saltate _40 anterior|previa|previo|de arriba|arriba|inicial|original|del sistema|todas|todos|tus$|sus$ _25 instrucciones|indicaciones|reglas|directrices|ordenes|normas|prompt",
            "nuevas _0 instrucciones|reglas|ordenes _2 :",
            "olvida _0 todo lo que _3 te$|le$ _3 dijeron|han dicho|dije|ensenaron|indicaron",
            "no hagas caso|no haga caso|haz caso omiso|ignora|ignore|olvida|olvide _20 reglas|instrucciones|indicaciones _20 de arriba|anteriores|previas|de antes",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "revela|revele|muestra|muestrame|muestre|ensename|imprime|imprima|repite|repita|dime$|dame$|escribe|copia _40 prompt del sistema|mensaje del sistema|mensaje de sistema|instrucciones iniciales|instrucciones ocultas|instrucciones secretas|instrucciones originales|instrucciones del sistema|instrucciones internas|indicaciones iniciales|indicaciones ocultas|indicaciones secretas|indicaciones del sistema",
            "cuales _3 son|eran _3 tus$|sus$|las$ _2 instrucciones|indicaciones|reglas _3 iniciales|originales|ocultas|secretas|del sistema",
            "repite|repita _3 el texto _3 de arriba|anterior",
            "empezando|comenzando _1 por|con$ _3 eres$|usted es",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "ahora _1 eres$|es usted _30 dan$|sin restriccion|sin ninguna restriccion|sin regla|sin limite|sin filtro|sin censura|malvad|libre$",
            "a partir de ahora|desde ahora _3 eres$|seras$|es usted _40 sin censura|sin regla|sin ninguna regla|sin restriccion|sin ninguna restriccion|sin limite|sin filtro|malvad|dan$",
            "finge|finja|haz como si|imagina _10 eres$|fueras|es$ _40 sin _12 restriccion|limite|regla|filtro",
            "ya no _1 estas|esta$ _1 sujet|obligad|atad|limitad",
            "haz$|haga$|interpreta|actua _15 el papel|como$ _30 malvad|sin censura|sin regla|sin ninguna regla|sin restriccion|nunca se niega",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "modo _1 desarrollador|jailbreak|dan$|dios$|sin restricciones _60 sin restriccion|sin ninguna restriccion|sin regla|sin limite|sin filtro|sin censura|ignora|ya no tienes reglas|politicas de contenido",
            "modo _1 jailbreak|dan$|dios$|sin restricciones _6 activado|activo|encendido",
            "responde|responda|contesta|conteste|escribe _20 sin$ _20 filtro|restricciones|censura|limites morales|limites|reglas",
            "evita|evite|eluda|elude|evade|desactiva|desactive|ignora|saltate|salta$ _10 tus$|sus$|los$|todos los _2 filtros|restricciones|protecciones|controles",
        ],
    },
    // ---------------------------------------------------------------- Italian
    Entry {
        family: IO,
        patterns: &[
            "ignora|ignori|ignorare|dimentica|dimentichi|non considerare|non tenere conto|trascura|salta$|scavalca _40 precedent|anterior|sopra$|iniziali|original|di sistema|tutte|tutti|tue$|sue$ _25 istruzioni|indicazioni|regole|linee guida|direttive|ordini|prompt",
            "nuove _0 istruzioni|regole _2 :",
            "dimentica _0 tutto _3 cio che|quello che _3 ti _15 detto|insegnato|indicato",
            "non considerare|non tenere conto|ignora|dimentica _20 regole|istruzioni|indicazioni _20 sopra$|precedenti|di prima",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "rivela|riveli|mostra|mostrami|mostri|stampa|ripeti|dimmi|dammi|scrivi|copia _40 prompt di sistema|messaggio di sistema|istruzioni iniziali|istruzioni nascoste|istruzioni segrete|istruzioni originali|istruzioni di sistema|istruzioni interne",
            "quali _3 sono|erano _3 le tue|le sue|le$ _2 istruzioni|regole _3 iniziali|originali|nascoste|segrete|di sistema",
            "ripeti _3 il testo _3 sopra$|precedente",
            "iniziando|cominciando _1 da$|con$ _3 sei$",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "ora sei _30 dan$|senza restrizion|senza alcuna restrizion|senza regol|senza limit|senza filtr|senza censura|non censurat|malvagi|liber",
            "d'ora in poi|da ora in poi|da adesso _3 sei$|sarai _40 non censurat|senza regol|senza alcuna regol|senza restrizion|senza limit|senza filtr|malvagi|dan$",
            "fingi|fai finta _3 di essere _40 senza _10 restrizion|limit|regol|filtr",
            "non sei piu _1 vincolat|obbligat|legat|soggett",
            "interpreta|comportati _15 il ruolo|come$ _30 malvagi|non censurat|senza regol|senza restrizion|non rifiuta mai",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "modalita _1 sviluppatore|jailbreak|dan$|dio$|senza restrizioni _60 senza restrizion|senza alcuna restrizion|senza regol|senza limit|senza filtr|senza censura|ignora|non hai piu regole|politiche sui contenuti",
            "modalita _1 jailbreak|dan$|dio$ _6 attivata|attiva|accesa",
            "rispondi|risponda|scrivi _20 senza _20 filtri|restrizioni|censura|limiti morali|limiti|regole",
            "aggira|aggiri|disattiva|disattivi|ignora _10 i tuoi|i suoi|tutti i _2 filtri|controlli|limiti|blocchi",
        ],
    },
    // ---------------------------------------------------------------- Portuguese
    Entry {
        family: IO,
        patterns: &[
            "ignore|ignora|ignorar|esqueca|esquece|esquecer|desconsidere|desconsidera|despreze|despreza|pule$|nao siga _40 anterior|previa|previo|acima|iniciais|inicial|original|do sistema|todas|todos|tuas$|suas$|seus$|teus$ _25 instrucoes|orientacoes|regras|diretrizes|ordens|prompt",
            "novas _0 instrucoes|regras|ordens _2 :",
            "esqueca|esquece _0 tudo _3 que _3 te$|lhe$ _3 disseram|foi dito|falaram|ensinaram|disse$",
            "desconsidere|desconsidera|ignore|ignora|esqueca|esquece _20 regras|instrucoes|orientacoes _20 acima|anteriores|de antes",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "revele|revela|mostre|mostra|imprima|imprime|repita|repete|diga|diz$|escreva|copie _40 prompt de sistema|prompt do sistema|mensagem de sistema|mensagem do sistema|instrucoes iniciais|instrucoes ocultas|instrucoes secretas|instrucoes originais|instrucoes do sistema|instrucoes internas",
            "quais _3 sao|eram _6 suas$|tuas$|as$ _2 instrucoes|regras _3 iniciais|originais|ocultas|secretas|do sistema",
            "repita|repete _3 o texto _3 acima|anterior",
            "comecando _1 com$|por$ _3 voce e$|tu es$",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "agora _1 voce e$|es$|tu es$ _30 dan$|sem restricao|sem nenhuma restricao|sem regra|sem limite|sem filtro|sem censura|malvad|livre$",
            "a partir de agora _3 voce e$|es$|tu es$|sera$ _40 sem censura|sem regra|sem nenhuma regra|sem restricao|sem nenhuma restricao|sem limite|sem filtro|malvad|dan$",
            "finja|finge|imagine _10 voce|es$ _40 sem _12 restricao|limite|regra|filtro",
            "voce|tu$ _1 nao esta|nao estas|ja nao esta _6 pres|obrigad|limitad|sujeit|vinculad",
            "faca|faz$|interprete _15 o papel|como$ _30 malvad|sem censura|sem regra|sem nenhuma regra|sem restricao|nunca recusa",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "modo _1 desenvolvedor|jailbreak|dan$|deus$|sem restricoes _60 sem restric|sem nenhuma restric|sem regra|sem limite|sem filtro|sem censura|ignore|nao tem mais regras|politicas de conteudo",
            "modo _1 jailbreak|dan$|deus$ _6 ativado|ativo|ligado",
            "responda|responde|escreva _20 sem$ _20 filtro|restricoes|censura|limites morais|limites|regras",
            "contorne|contorna|desative|desativa|ignore|ignora _10 seus$|teus$|os$|todos os _2 filtros|controles|limites|bloqueios",
        ],
    },
    // ---------------------------------------------------------------- Dutch
    Entry {
        family: IO,
        patterns: &[
            "negeer|vergeet|sla$|omzeil|houd je niet aan|trek je niets aan van _40 vorige|eerdere|voorgaande|bovenstaande|hierboven|oorspronkelijke|originele|systeem|alle$|je$|jouw$ _25 instructies|regels|richtlijnen|opdrachten|aanwijzingen|prompt",
            "nieuwe _0 instructies|regels|opdrachten _2 :",
            "negeer|vergeet _20 instructies|regels|richtlijnen|opdrachten _20 hierboven|hiervoor|eerder|van daarnet",
            "vergeet _0 alles _2 wat _30 verteld|gezegd|geleerd|opgedragen",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "onthul|toon|laat$|print|herhaal|geef|vertel|kopieer|schrijf _40 systeemprompt|systeembericht|systeeminstructies|oorspronkelijke instructies|originele instructies|verborgen instructies|geheime instructies|eerste instructies|interne instructies",
            "wat _1 zijn|waren _3 je$|jouw$|uw$|de$ _2 oorspronkelijke|originele|verborgen|geheime|eerste|systeem _2 instructies|prompt|regels",
            "herhaal _3 de tekst _3 hierboven|boven$",
            "beginnend met _3 jij bent|je bent|u bent",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "je bent|jij bent _1 nu$|niet langer|niet meer _30 dan$|zonder beperking|zonder enige beperking|zonder regels|zonder grenzen|zonder filters|zonder censuur|ongecensureerd|gebonden|kwaadaardig|vrij$",
            "vanaf nu _1 ben je|bent u|ben jij _40 ongecensureerd|zonder regels|zonder enige|zonder beperking|zonder grenzen|zonder filters|kwaadaardig|dan$",
            "doe alsof _40 zonder _12 beperking|grenzen|regels|filters",
            "speel de rol|gedraag je als _30 kwaadaardig|ongecensureerd|zonder regels|zonder beperking|nooit weigert",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "ontwikkelaarsmodus|jailbreakmodus|jailbreak-modus|dan-modus _60 zonder beperking|zonder enige|zonder regels|zonder grenzen|zonder filters|zonder censuur|negeer|geen regels|inhoudsbeleid",
            "jailbreakmodus|jailbreak-modus|dan-modus _5 aan$|actief|geactiveerd|ingeschakeld",
            "antwoord|schrijf _20 zonder _20 filter|veiligheidsfilter|beperking|censuur|grenzen|regels|morele",
            "omzeil|schakel|negeer|zet$ _10 je$|jouw$|alle$|de$ _2 veiligheidsfilters|filters|beveiligingen|beperkingen",
        ],
    },
    // ---------------------------------------------------------------- Polish
    Entry {
        family: IO,
        patterns: &[
            "zignoruj|ignoruj|zapomnij|pomin|nie zwracaj uwagi|zlekcewaz|lekcewaz|olej _40 poprzedni|wczesniejsz|powyzsz|pierwotn|oryginaln|systemow|wszystk|swoje|twoje _25 instrukcj|polecen|zasad|regul|wytyczn|prompt",
            "nowe _0 instrukcje|zasady|polecenia _2 :",
            "zignoruj|ignoruj|zapomnij _20 instrukcj|polecen|zasad|regul _20 powyzej|wyzej|wczesniej",
            "zapomnij _3 wszystk|to$ _3 co ci _20 powiedziano|mowiono|kazano",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "ujawnij|pokaz|wypisz|wyswietl|powtorz|podaj|zdradz|skopiuj|napisz _40 prompt systemow|wiadomosc systemow|komunikat systemow|instrukcje systemow",
            "ujawnij|pokaz|wypisz|wyswietl|powtorz|podaj|zdradz|skopiuj|napisz _40 poczatkow|ukryt|tajn|pierwotn|oryginaln|systemow|wewnetrzn _2 instrukcj|polecen|wytyczn",
            "jakie _1 sa$|byly _3 twoje|pana|pani|te$ _2 poczatkow|pierwotn|ukryt|tajn|systemow|oryginaln _2 instrukcj|polecen",
            "powtorz _2 tekst _2 powyzej|wyzej",
            "zaczynajac od _3 jestes",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "jestes _1 teraz|juz$|od teraz _40 dan$|bez ograniczen|bez zadnych|bez zasad|bez regul|bez filtrow|bez cenzury|nieocenzurowan|zla$|zly$|zlym|wolny",
            "od teraz|od tej chwili|od dzis _3 jestes|bedziesz _40 bez cenzury|bez zasad|bez zadnych|bez ograniczen|bez regul|bez filtrow|nieocenzurowan|zla$|zly$|zlym|dan$",
            "udawaj _3 ze jestes _40 bez _12 ograniczen|zasad|regul|filtrow|granic",
            "nie obowiazuja|nie wiaza _3 cie _15 zasady|reguly|ograniczenia|wytyczne",
            "odgrywaj|zachowuj sie jak|wciel sie w _30 zla$|zlej|zly$|zlego|nieocenzurowan|bez zasad|bez ograniczen|nigdy nie odmawia",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "tryb _1 dewelopera|programisty|jailbreak|dan$|boga$|bez ograniczen _60 bez ograniczen|bez zadnych|bez zasad|bez regul|bez filtrow|bez cenzury|zignoruj|nie masz juz zasad|nie masz zasad|zasady tresci",
            "tryb _1 jailbreak|dan$|boga$ _6 wlaczony|aktywny|aktywowany",
            "odpowiadaj|odpowiedz|pisz$ _20 bez$ _20 filtrow|ograniczen|cenzury|granic|zasad",
            "obejdz|wylacz|zignoruj _10 swoje|twoje|wszystkie _2 filtry|zabezpieczenia|ograniczenia",
        ],
    },
    // ---------------------------------------------------------------- Russian
    Entry {
        family: IO,
        patterns: &[
            "игнорир|проигнорир|забуд|не обращай|отбрось|пропусти|не следуй _40 предыдущ|прежн|прошл|вышеуказанн|выше$|исходн|изначальн|первоначальн|системн|все$|свои$|твои$|ваши$ _25 инструкци|указани|правил|установк|команд|промпт|директив",
            "игнорир|проигнорир|забуд|не обращай|отбрось _30 инструкци|указани|правил|установк _20 выше$|ранее|раньше|до этого",
            "новые _0 инструкции|правила|указания _2 :",
            "забудь|забудьте _0 все|всё _3 что|чему _3 тебе|вам _2 говорили|сказали|велели|учили",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "покажи|выведи|раскрой|повтори|напиши|скажи|распечатай|скопируй|перечисли _40 системн _2 промпт|сообщени|инструкци|подсказк",
            "покажи|выведи|раскрой|повтори|напиши|скажи|распечатай|скопируй|перечисли _40 исходн|изначальн|скрыт|секретн|первоначальн|внутренн _2 инструкци|указани|промпт|правил",
            "какие _1 у тебя|у вас|твои|ваши _2 исходн|изначальн|скрыт|секретн|первоначальн|системн _2 инструкци|указани|правил",
            "повтори _2 текст _2 выше$",
            "начиная со|начиная с _8 ты$",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "теперь|отныне _1 ты$ _40 dan$|без каких-либо|без всяких|без любых|без ограничени|без правил|без фильтр|без цензур|нецензурн|зло|свободн",
            "с этого момента _1 ты$ _40 без цензуры|без правил|без каких-либо|без всяких|без ограничени|без фильтр|зло|dan$",
            "притворись|представь _3 что ты _40 без _14 ограничени|правил|фильтр|рамок",
            "ты больше не _1 связан|обязан|ограничен",
            "сыграй|играй|веди себя как _30 зло|злого|нецензурн|без правил|без всяких|без ограничени|никогда не отказывает",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "режим _1 разработчика|джейлбрейка|jailbreak|dan$|бога$|без ограничений _60 без каких-либо|без ограничени|без правил|без фильтр|без цензур|игнорир|нет правил|нет больше правил|больше нет правил|правила контента",
            "режим _1 джейлбрейка|jailbreak|dan$|бога$ _3 включ|активир",
            "отвечай|ответь|пиши _20 без$ _20 фильтр|ограничени|цензур|правил|рамок",
            "обойди|отключи|игнорируй _10 свои|твои|все$ _2 фильтры|ограничения|защит",
        ],
    },
    // ---------------------------------------------------------------- Turkish
    Entry {
        family: IO,
        patterns: &[
            "onceki|yukaridaki|ilk$|orijinal|sistem|tum$|butun _30 talimat|kural|yonerge|yonlendirme|komut|istem _25 yok say|unut|gormezden gel|goz ardi et|dikkate alma|atla|cigne",
            "yeni _0 talimatlar|kurallar _2 :",
            "sana _25 soylenen|anlatilan|verilen _2 her seyi _2 unut",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "sistem _1 istemin|istemi|mesajin|mesaji|talimatlarin|promptun|promptu _40 goster|yazdir|soyle|tekrarla|acikla|paylas|ifsa et",
            "ilk$|gizli|orijinal|baslangic|ic$ _1 talimat|kural|yonerge _40 goster|yazdir|soyle|tekrarla|acikla|paylas|ifsa et",
            "ilk$|gizli|orijinal|baslangic _1 talimat|kural|yonerge _2 neler|nedir",
            "yukaridaki metni _40 tekrarla",
            "sen bir _3 ile baslayarak",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "artik _40 dan$|hicbir kisitlama|hicbir kural|hicbir sinir|hicbir filtre|sansursuz|kuralsiz|kotu",
            "su andan itibaren|bundan sonra|simdiden sonra _40 sansursuz|kuralsiz|kisitlamasiz|sinirsiz|kotu|dan$",
            "hicbir|hic$ _1 siniri|kisitlamasi|kurali|filtresi _1 olmayan _30 gibi davran",
            "artik _30 politika|kural|yonerge _6 bagli degilsin",
            "asla reddetmeyen|kotu|sansursuz _30 rolunu oyna",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "gelistirici|jailbreak|dan$ _1 modu _60 kisitlama olmadan|kisitlamasiz|yok say|hicbir kural|kurallarin yok|icerik politika",
            "jailbreak|dan$ _1 modu _3 acik|aktif|etkin",
            "guvenlik filtre|ahlaki sinir|kisitlama _20 olmadan|olmaksizin _20 cevap|yanit|yaz",
            "guvenlik filtre _10 atla|devre disi birak|kapat|asarak|yok say",
        ],
    },
    // ---------------------------------------------------------------- Arabic
    Entry {
        family: IO,
        patterns: &[
            "تجاهل|انس|انسى|لا تلتزم|تخط|أهمل|اهمل|لا تتبع _40 السابقة|السابق|أعلاه|اعلاه|الأصلية|الاصلية|الأولية|الاولية|النظام|جميع|كل|إرشاداتك|ارشاداتك|تعليماتك|القواعد|التعليمات",
            "تعليمات جديدة _2 :",
            "انس|انسى _2 كل ما _3 قيل|قلته|تعلمته|أخبروك",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "اكشف|أظهر|اظهر|اعرض|اطبع|كرر|أخبرني|اخبرني|انسخ|اكتب _40 موجه النظام|رسالة النظام|تعليمات النظام|تعليماتك الأولية|تعليماتك الاولية|تعليماتك المخفية|تعليماتك السرية|تعليماتك الأصلية|التعليمات الأولية|التعليمات المخفية|التعليمات السرية",
            "ما هي _1 تعليماتك _1 الأولية|الاولية|المخفية|السرية|الأصلية|الاصلية",
            "كرر _1 النص _1 أعلاه|اعلاه|السابق",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "أنت الآن|انت الان|انت الآن|أنت الان _40 dan$|بلا أي|بلا اي|بلا قيود|بلا قواعد|بلا حدود|بلا رقابة|بدون أي|بدون اي|بدون قيود|بدون قواعد|شرير",
            "من الآن فصاعدا|من الان فصاعدا _40 بلا رقابة|بلا قواعد|بلا قيود|بدون قيود|شرير|dan$",
            "تظاهر _40 بلا|بدون _8 حدود|قيود|قواعد",
            "لم تعد ملزم",
            "العب دور|مثل دور _30 شرير|بلا رقابة|لا يرفض",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "وضع المطور|وضع كسر الحماية|وضع dan _60 بدون أي قيود|بدون اي قيود|بدون قيود|بلا قيود|تجاهل|لا قواعد|لم تعد لديك قواعد|سياسات المحتوى",
            "وضع كسر الحماية|وضع dan _3 مفعل|مفعّل",
            "أجب|اجب|اكتب|رد _20 بدون|بلا|دون _20 فلاتر|قيود|رقابة|حدود",
            "تجاوز|عطل|تجاهل _10 فلاتر|قيود|حماية _2 الأمان|الامان|الخاصة",
        ],
    },
    // ---------------------------------------------------------------- Hindi
    Entry {
        family: IO,
        patterns: &[
            "पिछले|पहले|ऊपर|मूल|शुरुआती|सिस्टम|सभी|अपने _30 निर्देश|नियम|दिशानिर्देश|आदेश|प्रॉम्प्ट _25 अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल|पालन मत",
            "नए निर्देश _2 :",
            "जो _3 भी _3 तुम्हें|आपको _3 बताया|कहा|सिखाया _25 भूल",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "सिस्टम प्रॉम्प्ट|सिस्टम संदेश|सिस्टम निर्देश|शुरुआती निर्देश|छिपे हुए निर्देश|छिपे निर्देश|गुप्त निर्देश|मूल निर्देश|आंतरिक निर्देश _40 बताओ|बताएं|दिखाओ|दिखाएं|प्रिंट|दोहराओ|लिखो",
            "तुम्हारे|आपके|तुम्हारा|आपका _2 शुरुआती|छिपे हुए|गुप्त|मूल|सिस्टम _2 निर्देश|प्रॉम्प्ट _20 क्या",
            "ऊपर का _1 पाठ|टेक्स्ट _30 दोहराओ",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "अब$|अब से _1 तुम|आप$ _40 dan$|बिना किसी|बिना प्रतिबंध|बिना सेंसर|बिना नियम|बिना सीमा|दुष्ट",
            "ऐसा दिखाओ|नाटक करो|मान लो _3 कि _3 तुम|आप$ _40 बिना _8 सीमा|प्रतिबंध|नियम",
            "नीतियों|नियमों|दिशानिर्देशों _1 से बंधे नहीं",
            "दुष्ट|बिना सेंसर _30 भूमिका निभाओ",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "डेवलपर मोड|जेलब्रेक मोड|dan मोड _60 बिना किसी प्रतिबंध|बिना प्रतिबंध|अनदेखा|कोई नियम नहीं|सामग्री नीति",
            "जेलब्रेक|dan$ _1 मोड _1 चालू|सक्रिय",
            "बिना _10 सुरक्षा फ़िल्टर|सुरक्षा फिल्टर|नैतिक सीमा|प्रतिबंध _30 जवाब|उत्तर|लिखो",
            "सुरक्षा फ़िल्टर|सुरक्षा फिल्टर _15 बायपास|बंद|अनदेखा",
        ],
    },
    // ---------------------------------------------------------------- Chinese
    Entry {
        family: IO,
        patterns: &[
            "忽略|忽视|无视|無視|忘记|忘掉|忘記|不要遵守|不要理会|跳过|抛开 _20 之前|以前|先前|上面|上述|以上|原来|原有|原始|最初|系统|所有|全部|你的 _15 指令|指示|规则|規則|指导方针|方针|说明|提示|要求|设定|命令",
            "新的指令|新指令|新的指示|新的规则 _1 :|：",
            "忘记|忘掉|忘記 _12 被告知|告诉你|说过|学到 _2 一切|所有",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "显示|输出|打印|告诉我|透露|泄露|重复|给我|展示|说出|列出 _20 系统提示|系統提示|系统消息|系统信息|系统指令|最初的指令|隐藏的指令|秘密指令|原始指令|内部指令|初始指令|最初指令|隐藏指令|最初的指示|隐藏的指示",
            "系统提示|系统消息 _15 原样|逐字|完整地|输出|显示|打印",
            "最初|隐藏|原始|初始 _2 指令|指示 _15 是什么|原样|逐字|完整|输出|显示|打印",
            "重复上面的",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "你现在是|你現在是 _30 dan$|没有任何限制|沒有任何限制|没有限制|不受限制|无限制|邪恶",
            "从现在开始|從現在開始|从现在起 _35 没有审查|没有规则|没有限制|不受限制|无限制|邪恶|dan$",
            "假装你是|假裝你是 _25 没有任何限制|没有限制|不受限制|无限制",
            "你不再受 _15 约束|限制",
            "扮演 _20 从不拒绝|邪恶|没有限制|不受限制",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "开发者模式|開發者模式|越狱模式|越獄模式|dan模式 _40 不受任何限制|没有限制|忽略|无视|没有规则|不再有任何规则|内容政策",
            "越狱|越獄|dan$ _0 模式 _3 开启|启用|激活|打开",
            "没有安全过滤|没有道德限制|没有任何限制 _15 回答|回复",
            "绕过|繞過|关闭|禁用 _6 安全过滤|内容过滤|限制",
        ],
    },
    // ---------------------------------------------------------------- Japanese
    Entry {
        family: IO,
        patterns: &[
            "以前|前の|上記|これまで|元の|最初|システム|すべて|全て _15 指示|ルール|ガイドライン|命令|規則|プロンプト|設定 _15 無視|忘れ|破棄|従わない",
            "新しい指示 _1 :|：",
            "これまでに|以前に|今まで _10 言われた|教えられた|指示された _10 忘れ",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "システムプロンプト|システムメッセージ|システム指示|最初の指示|隠された指示|秘密の指示|元の指示|初期の指示|内部の指示|最初のプロンプト|隠されたプロンプト _30 表示|出力|見せ|教え|繰り返|書い|印刷",
            "最初|隠された|秘密|元の|初期|内部 _2 指示|プロンプト|命令 _6 何",
            "上の _1 テキスト|文章|文 _20 繰り返",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "あなたは今から|今からあなたは|あなたは今|これからあなたは _30 dan$|制限のない|制限なし|検閲もルールもない|検閲のない|ルールのない|邪悪",
            "制限|ルール|検閲 _3 ない _15 ふりをして",
            "ポリシー|ルール|ガイドライン _1 に縛られて",
            "決して断らない|邪悪な|制限のない _15 演じて",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "開発者モード|脱獄モード|ジェイルブレイクモード|danモード _40 制限なし|無視|ルールはありません|コンテンツポリシー|制限のない",
            "脱獄|ジェイルブレイク|dan$ _0 モード _2 オン|有効",
            "安全フィルター|倫理的な制限|制限 _15 なしで _2 答え|回答|応答",
            "安全フィルター _6 回避|無効|オフ|無視",
        ],
    },
    // ---------------------------------------------------------------- Korean
    Entry {
        family: IO,
        patterns: &[
            "이전|앞의|위의|원래|초기|시스템|모든 _15 지시|규칙|지침|명령|프롬프트|설정 _15 무시|잊|따르지 마",
            "새로운|새$ _1 지시|규칙|명령 _3 :|：",
            "전에|이전에|지금까지 _1 들은|배운|받은 _1 것은|것을|건$ _1 모두|전부|다$ _1 잊|무시",
        ],
    },
    Entry {
        family: PE,
        patterns: &[
            "시스템 프롬프트|시스템 메시지|시스템 지시|초기 지시|숨겨진 지시|비밀 지시|원래 지시|내부 지시|초기 프롬프트|숨겨진 프롬프트 _30 보여|출력|알려|반복|말해|공개",
            "초기|숨겨진|비밀|원래|내부 _1 지시|프롬프트|명령 _10 뭐야|무엇",
            "위의 _1 텍스트|글|내용 _20 반복",
        ],
    },
    Entry {
        family: RH,
        patterns: &[
            "너는 이제|당신은 이제 _30 dan|제한이 없는|제한 없는|검열 없는|규칙 없는|사악한",
            "지금부터 _30 검열도 규칙도 없는|검열 없는|규칙 없는|제한 없는|사악한|dan",
            "제한|규칙|검열 _2 없는 _15 인 척|척해",
            "정책|규칙|지침 _1 에 _8 얽매이지 않",
            "거절하지 않는|사악한|검열 없는 _15 역할을",
        ],
    },
    Entry {
        family: JB,
        patterns: &[
            "개발자 모드|탈옥 모드|dan 모드 _40 제한 없이|무시|규칙이 없|콘텐츠 정책",
            "탈옥|dan$ _1 모드 _1 켜짐|활성화",
            "안전 필터|윤리적 제한|제한 _15 없이 _1 대답|답변|응답",
            "안전 필터 _6 우회|끄|무시|해제",
        ],
    },
];
