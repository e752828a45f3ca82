# Run on Google Cloud: build the Flex Template, run on Dataflow, launch the template.
# Every setting is a make variable, given on the command line or in the environment, e.g.
#   make dataflow PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket \
#     START=20240101T00 END=20240131T23 POSTHOG_HOST=https://eu.i.posthog.com
# docs/deploy.md explains each variable. Every target prints the commands it runs,
# so no API key ever goes on a command line: `dataflow` hands the keys to the pipeline through
# AMPLITUDE_API_KEY, AMPLITUDE_SECRET_KEY and POSTHOG_API_KEY in the environment, and
# `launch-template` passes Secret Manager secret names.

PY ?= .venv/bin/python
REPOSITORY ?= aplistorical
# An immutable tag per commit, so that workers added late in a long job run the same image.
ifndef TAG
TAG := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
endif
IMAGE ?= $(REGION)-docker.pkg.dev/$(PROJECT)/$(REPOSITORY)/aplistorical:$(TAG)
TEMPLATE_PATH ?= gs://$(BUCKET)/templates/aplistorical.json
WORK_DIR ?= gs://$(BUCKET)/migrations/amplitude-$(START)-$(END)
MAX_WORKERS ?= 4
JOB ?= aplistorical-$(shell date -u +%Y%m%d-%H%M%S)

# $(call require,VARIABLE,what it holds): stop before running anything when VARIABLE is empty.
require = $(if $(strip $($(1))),,$(error $(1) is not set: give $(2), e.g. make $@ $(1)=...))
# $(call opt,FLAG,VARIABLE): FLAG followed by VARIABLE's value, or nothing when VARIABLE is empty.
opt = $(if $(strip $($(2))),$(1)$($(2)))

# The optional settings, each left out when its variable is empty.
DATAFLOW_OPTIONS = $(strip $(call opt,--sdk_container_image ,WORKER_IMAGE) \
  $(call opt,--max_events_per_second ,MAX_EVENTS_PER_SECOND) $(ARGS))
LAUNCH_OPTIONS = $(strip $(call opt,--parameters posthog_api_key=,POSTHOG_API_KEY_SECRET) \
  $(call opt,--parameters amplitude_api_key=,AMPLITUDE_API_KEY_SECRET) \
  $(call opt,--parameters amplitude_secret_key=,AMPLITUDE_SECRET_KEY_SECRET) \
  $(call opt,--parameters max_events_per_second=,MAX_EVENTS_PER_SECOND) $(PARAMS))

.PHONY: template dataflow launch-template

template:
	$(call require,PROJECT,the Google Cloud project id)
	$(call require,REGION,the Dataflow and Artifact Registry region)
	$(call require,BUCKET,the Cloud Storage bucket for the template spec)
	docker build $(strip --platform linux/amd64 -f templates/Dockerfile -t $(IMAGE) \
	  $(call opt,--build-arg LAUNCHER_TAG=,LAUNCHER_TAG)) .
	docker push $(IMAGE)
	gcloud dataflow flex-template build $(TEMPLATE_PATH) --image $(IMAGE) --sdk-language PYTHON \
	  --metadata-file templates/metadata.json --project $(PROJECT)

dataflow: $(STAMP)
	$(call require,PROJECT,the Google Cloud project id)
	$(call require,REGION,the Dataflow region)
	$(call require,BUCKET,the Cloud Storage bucket for staging files and the job folder)
	$(call require,START,the first hour to migrate (YYYYMMDDTHH))
	$(call require,END,the last hour to migrate (YYYYMMDDTHH))
	$(call require,POSTHOG_HOST,the PostHog ingestion host)
	$(PY) -m pipeline --runner DataflowRunner --project $(PROJECT) --region $(REGION) \
	  --temp_location gs://$(BUCKET)/tmp --staging_location gs://$(BUCKET)/staging \
	  --setup_file ./setup.py --max_num_workers $(MAX_WORKERS) \
	  --start $(START) --end $(END) --work_dir $(WORK_DIR) \
	  --posthog_host $(POSTHOG_HOST) $(DATAFLOW_OPTIONS)

launch-template:
	$(call require,PROJECT,the Google Cloud project id)
	$(call require,REGION,the Dataflow region)
	$(call require,BUCKET,the Cloud Storage bucket of the template spec and the job folder)
	$(call require,START,the first hour to migrate (YYYYMMDDTHH))
	$(call require,END,the last hour to migrate (YYYYMMDDTHH))
	$(call require,POSTHOG_HOST,the PostHog ingestion host)
	gcloud dataflow flex-template run $(JOB) --project $(PROJECT) --region $(REGION) \
	  --template-file-gcs-location $(TEMPLATE_PATH) \
	  --staging-location gs://$(BUCKET)/staging --temp-location gs://$(BUCKET)/tmp \
	  --max-workers $(MAX_WORKERS) --parameters sdk_container_image=$(IMAGE) \
	  --parameters start=$(START) --parameters end=$(END) --parameters work_dir=$(WORK_DIR) \
	  --parameters posthog_host=$(POSTHOG_HOST) $(LAUNCH_OPTIONS)
