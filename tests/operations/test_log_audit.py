"""The end-of-session log check (tests/conftest.py::pytest_sessionfinish) finds what it must."""

from harness.log_audit import leaks


def test_a_whole_phone_number_or_a_secret_in_a_log_is_found_and_masked_forms_are_not(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text(
        "level=INFO event=send_ok to=010****5678\n"
        "level=ERROR event=boom detail='duplicate key (phone)=(01012345678)'\n"
        "level=INFO path=/api/v1/solapi/reports/s3cret-webhook-path/\n"
        "level=INFO path=/api/v1/solapi/reports/***/\n",
        encoding="utf-8",
    )

    found = leaks([log], ["s3cret-webhook-path", ""])

    assert [line.split(":")[1] for line in found] == ["2", "3"]
    assert not any("01012345678" in line or "s3cret-webhook-path" in line for line in found)
