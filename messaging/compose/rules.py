"""Korean sending rules for advertising, checked when the message is written.

정보통신망법 §50 and Kakao's AlimTalk policy (docs/korean-rules.md, one section each):
- an ad starts with exactly "(광고)", carries the sender's name, and ends with a free
  opt-out line ("무료수신거부 080-…");
- an ad goes only to recipients with recorded marketing consent; between 21:00 and
  08:00 KST only to those with a separate night consent, the others wait for 08:00;
- AlimTalk is informational only: an ad cannot go by AlimTalk;
- consent must be re-confirmed every two years.
Mistakes cost fines of up to ₩30M or a Kakao sending ban, so the send is refused
before anything is written, with a message that says how to fix the text.
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from messaging.compose.refusals import Refusal, RefusalCode
from messaging.models import MessageMode, Purpose
from project.clock import KST
from tenants.models import Tenant

AD_LABEL = "(광고)"
NIGHT_STARTS, NIGHT_ENDS = time(21, 0), time(8, 0)
# How far ahead a send may be scheduled (send_at): its credit is held until then.
MAX_SCHEDULE_AHEAD = timedelta(days=90)
# Deferred night-time ads are released from 08:00 in waves, not all at once.
RELEASE_WAVE_SIZE = 1000
RELEASE_WAVE_INTERVAL = timedelta(minutes=2)

_OPT_OUT_LINE = re.compile(r"무료\s*수신\s*거부\s*:?\s*(0\s*8\s*0[\d\s-]{7,11})\s*$")
# Words that make a message an ad in Kakao's and KISA's reading (discounts, events,
# recruiting, free trials); an "info" message that contains them gets a warning.
LIKELY_AD_WORDS = ("할인", "이벤트", "모집", "무료 체험", "무료체험", "특가", "선착순", "혜택", "증정", "프로모션",
                   "신규 등록", "신규등록", "등록금 인하", "수강료 인하", "추천인", "쿠폰")


def check_ad_channel(*, purpose: str, mode: str) -> None:
    """AlimTalk is for information only (Kakao's policy): an ad goes as SMS/LMS."""
    if purpose == Purpose.AD and mode in (MessageMode.ALIMTALK, MessageMode.BOTH):
        raise Refusal(RefusalCode.AD_VIA_ALIMTALK)


def check_ad_text(*, tenant: Tenant, purpose: str, text: str) -> None:
    """Refuse an ad without the label, the academy's name or the free opt-out line."""
    if purpose != Purpose.AD:
        return
    if not text.startswith(AD_LABEL):
        raise Refusal(RefusalCode.AD_LABEL_MISSING)
    if tenant.name not in text:
        raise Refusal(RefusalCode.AD_SENDER_NAME_MISSING, name=tenant.name)
    if not tenant.ad_opt_out_number:
        raise Refusal(RefusalCode.AD_OPT_OUT_NUMBER_MISSING)
    line = _OPT_OUT_LINE.search(text.rstrip())
    if line is None or re.sub(r"\D", "", line.group(1)) != tenant.ad_opt_out_number:
        raise Refusal(RefusalCode.AD_OPT_OUT_MISSING, number=format_080(tenant.ad_opt_out_number))


def check_send_at(*, purpose: str, send_at: datetime | None, now: datetime) -> None:
    """A scheduled send starts in the future, within MAX_SCHEDULE_AHEAD, and an ad is not
    scheduled into the night window (21:00-08:00 KST), when it could reach only recipients
    with night consent."""
    if send_at is None:
        return
    if send_at <= now:
        raise Refusal(RefusalCode.SEND_AT_IN_PAST, send_at=_kst(send_at))
    if send_at - now > MAX_SCHEDULE_AHEAD:
        raise Refusal(RefusalCode.SEND_AT_TOO_FAR, days=MAX_SCHEDULE_AHEAD.days)
    if purpose == Purpose.AD and in_night_window(send_at):
        raise Refusal(RefusalCode.SEND_AT_IN_NIGHT_WINDOW, send_at=_kst(send_at))


def _kst(moment: datetime) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M KST")


def format_080(number: str) -> str:
    return f"{number[:3]}-{number[3:-4]}-{number[-4:]}" if number else "080-…"


def likely_ad_warnings(*, purpose: str, text: str) -> list[dict]:
    """For the preview: an "info" message that reads like an ad."""
    if purpose != Purpose.INFO:
        return []
    words = [w for w in LIKELY_AD_WORDS if w in text]
    if not words:
        return []
    return [{
        "code": "likely_ad",
        "words": words,
        "messages": {
            "ko": f"광고성 표현({', '.join(words)})이 있습니다. 광고라면 purpose를 ad로 하고 (광고) 표기와 "
                  f"무료수신거부 문구를 넣어 주세요.",
            "en": f"This reads like an ad ({', '.join(words)}). If it is one, send it with purpose=ad, the (광고) "
                  f"label and the free opt-out line.",
        },
    }]


@dataclass(frozen=True)
class Consent:
    """What one recipient agreed to (read by messaging/selectors.py: the rules stay pure)."""

    ads: bool
    night_ads: bool


def in_night_window(moment: datetime) -> bool:
    local = moment.astimezone(KST).time()
    return local >= NIGHT_STARTS or local < NIGHT_ENDS


def next_morning(moment: datetime) -> datetime:
    """08:00 KST at or after `moment`."""
    local = moment.astimezone(KST)
    morning = local.replace(hour=NIGHT_ENDS.hour, minute=0, second=0, microsecond=0)
    return morning if local < morning else morning + timedelta(days=1)


def release_time(morning: datetime, position: int) -> datetime:
    """When the `position`-th deferred message goes out: waves of RELEASE_WAVE_SIZE from
    08:00, so a night's ads do not all hit the carriers at the same minute."""
    return morning + (position // RELEASE_WAVE_SIZE) * RELEASE_WAVE_INTERVAL
