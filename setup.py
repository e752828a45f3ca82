"""Install Aplistorical for the launcher and, through ``--setup_file``, for Beam's workers."""

from setuptools import find_packages, setup

# apache-beam's version must match the Flex Template launcher image (templates/Dockerfile).
# [aws] brings Beam's S3 file system, for Amplitude's S3 export as a source.
BEAM = "apache-beam[gcp,aws]>=2.77.0,<2.78"

setup(
    name="aplistorical",
    version="0.1.0",
    description="Migrate an analytics history from Amplitude to PostHog with Apache Beam.",
    python_requires=">=3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*",
                                    "connectors", "connectors.*", "sandbox", "sandbox.*"]),
    install_requires=[
        BEAM,
        "requests>=2.31,<3",
        "orjson>=3.9,<4",
        "fastavro>=1.9,<2",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            "gcp-storage-emulator>=2024.8,<2027",
            # A real S3 server on loopback for the s3:// tests (moto's server mode).
            "moto[server]>=5,<6",
        ],
        # The benchmark's baseline is PostHog's documented approach, which uses their SDK.
        "bench": ["posthog>=3,<8"],
        # `make pictures` crops the documentation's screenshots.
        "pictures": ["pillow>=10,<14"],
    },
    entry_points={"console_scripts": ["aplistorical=pipeline.cli:main"]},
)
