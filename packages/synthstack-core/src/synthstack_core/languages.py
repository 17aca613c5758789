"""ISO 639-1 language codes and their English names, and the languages Whisper knows.

The transcription API names languages by ISO 639-1 code (``en``, ``fr``); a provider that answers
with a language name (OpenAI's ``verbose_json`` says ``"english"``) is mapped back with
:func:`language_code`.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["ISO_639_1", "WHISPER_LANGUAGES", "language_code", "language_name"]

_TABLE = """
aa Afar|ab Abkhazian|ae Avestan|af Afrikaans|ak Akan|am Amharic|an Aragonese|ar Arabic|as Assamese
av Avaric|ay Aymara|az Azerbaijani|ba Bashkir|be Belarusian|bg Bulgarian|bi Bislama|bm Bambara
bn Bengali|bo Tibetan|br Breton|bs Bosnian|ca Catalan|ce Chechen|ch Chamorro|co Corsican|cr Cree
cs Czech|cu Church Slavic|cv Chuvash|cy Welsh|da Danish|de German|dv Divehi|dz Dzongkha|ee Ewe
el Greek|en English|eo Esperanto|es Spanish|et Estonian|eu Basque|fa Persian|ff Fulah|fi Finnish
fj Fijian|fo Faroese|fr French|fy Western Frisian|ga Irish|gd Scottish Gaelic|gl Galician|gn Guarani
gu Gujarati|gv Manx|ha Hausa|he Hebrew|hi Hindi|ho Hiri Motu|hr Croatian|ht Haitian Creole
hu Hungarian|hy Armenian|hz Herero|ia Interlingua|id Indonesian|ie Interlingue|ig Igbo|ii Sichuan Yi
ik Inupiaq|io Ido|is Icelandic|it Italian|iu Inuktitut|ja Japanese|jv Javanese|ka Georgian|kg Kongo
ki Kikuyu|kj Kuanyama|kk Kazakh|kl Kalaallisut|km Khmer|kn Kannada|ko Korean|kr Kanuri|ks Kashmiri
ku Kurdish|kv Komi|kw Cornish|ky Kyrgyz|la Latin|lb Luxembourgish|lg Ganda|li Limburgish|ln Lingala
lo Lao|lt Lithuanian|lu Luba-Katanga|lv Latvian|mg Malagasy|mh Marshallese|mi Maori|mk Macedonian
ml Malayalam|mn Mongolian|mr Marathi|ms Malay|mt Maltese|my Burmese|na Nauru|nb Norwegian Bokmal
nd North Ndebele|ne Nepali|ng Ndonga|nl Dutch|nn Norwegian Nynorsk|no Norwegian|nr South Ndebele
nv Navajo|ny Chichewa|oc Occitan|oj Ojibwa|om Oromo|or Oriya|os Ossetian|pa Punjabi|pi Pali|pl Polish
ps Pashto|pt Portuguese|qu Quechua|rm Romansh|rn Rundi|ro Romanian|ru Russian|rw Kinyarwanda
sa Sanskrit|sc Sardinian|sd Sindhi|se Northern Sami|sg Sango|si Sinhala|sk Slovak|sl Slovenian
sm Samoan|sn Shona|so Somali|sq Albanian|sr Serbian|ss Swati|st Southern Sotho|su Sundanese
sv Swedish|sw Swahili|ta Tamil|te Telugu|tg Tajik|th Thai|ti Tigrinya|tk Turkmen|tl Tagalog
tn Tswana|to Tonga|tr Turkish|ts Tsonga|tt Tatar|tw Twi|ty Tahitian|ug Uyghur|uk Ukrainian|ur Urdu
uz Uzbek|ve Venda|vi Vietnamese|vo Volapuk|wa Walloon|wo Wolof|xh Xhosa|yi Yiddish|yo Yoruba
za Zhuang|zh Chinese|zu Zulu
"""

#: Every ISO 639-1 code (two lower-case letters) and its English name.
ISO_639_1: MappingProxyType[str, str] = MappingProxyType(
    dict(
        entry.strip().split(" ", 1)
        for line in _TABLE.strip().splitlines()
        for entry in line.split("|")
        if entry.strip()
    )
)

# Whisper's languages less Hawaiian and Cantonese, which have no ISO 639-1 code; Whisper's ``jw``
# is ``jv`` here.
_WHISPER_CODES = """
    en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur
    hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si
    km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt ln ha ba
    jv su
"""
#: The ISO 639-1 codes of the languages multilingual Whisper models know.
WHISPER_LANGUAGES: tuple[str, ...] = tuple(_WHISPER_CODES.split())

# Names some providers use that differ from the table's.
_NAME_ALIASES = {
    "haitian": "ht",
    "nynorsk": "nn",
    "myanmar": "my",
    "sinhalese": "si",
    "castilian": "es",
    "flemish": "nl",
    "moldavian": "ro",
    "moldovan": "ro",
    "pushto": "ps",
    "panjabi": "pa",
    "valencian": "ca",
    "letzeburgesch": "lb",
    "mandarin": "zh",
}
_BY_NAME = {name.lower(): code for code, name in ISO_639_1.items()} | _NAME_ALIASES


def language_name(code: str) -> str:
    """The English name of an ISO 639-1 ``code`` (the code itself if unknown)."""
    return ISO_639_1.get(code, code)


def language_code(value: str | None) -> str | None:
    """An ISO 639-1 code for a provider's language label (a code or an English name), or None."""
    if not value:
        return None
    label = value.strip().lower()
    if label in ISO_639_1:
        return label
    return _BY_NAME.get(label)
