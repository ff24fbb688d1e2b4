"""Solar position at acquisition time (NOAA's general solar position equations, ~0.5 degree)."""

from __future__ import annotations

import math
from datetime import datetime


def solar_angles(lon: float, lat: float, when: datetime) -> tuple[float, float]:
    """(azimuth, elevation) of the sun in degrees; azimuth clockwise from north.

    Args:
        lon: Longitude, degrees east.
        lat: Latitude, degrees north.
        when: Time in UTC (naive or aware).

    Example:
        >>> from datetime import datetime
        >>> azimuth, elevation = solar_angles(114.0, 33.0, datetime(2024, 6, 20, 3, 0))
        >>> 90 < azimuth < 180 and 60 < elevation < 80
        True
    """
    day = when.timetuple().tm_yday
    hours = when.hour + when.minute / 60 + when.second / 3600
    gamma = 2 * math.pi / 365 * (day - 1 + (hours - 12) / 24)
    equation_of_time = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    declination = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    solar_minutes = hours * 60 + equation_of_time + 4 * lon
    hour_angle = math.radians(solar_minutes / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(declination) * math.cos(hour_angle)
    elevation = 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))
    azimuth = (
        math.degrees(
            math.atan2(
                math.sin(hour_angle), math.cos(hour_angle) * math.sin(phi) - math.tan(declination) * math.cos(phi)
            )
        )
        + 180
    )
    return azimuth % 360, elevation
