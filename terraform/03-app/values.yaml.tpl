# Helm values for chart langfuse 1.5.19, rendered by templatefile() in helm.tf.
# Every secret arrives as a template variable; none is written here.
langfuse:
  salt:
    value: ${jsonencode(salt)}
  encryptionKey:
    value: ${jsonencode(encryption_key)}
  nextauth:
    url: "http://localhost:3000"
    secret:
      value: ${jsonencode(nextauth_secret)}
  features:
    # AUTH_DISABLE_SIGNUP=true in the pods, through the chart's own switch.
    signUpDisabled: true
  serviceAccount:
    create: true
    annotations:
      # IRSA: the pods get S3 credentials from this role, no static keys (FR12, NFR4).
      eks.amazonaws.com/role-arn: ${jsonencode(irsa_role_arn)}
  web:
    resources:
      requests:
        cpu: 250m
        memory: 768Mi
      limits:
        memory: 1536Mi
    livenessProbe:
      # First boot runs hundreds of migrations; do not kill the pod half-way (decision 13).
      initialDelaySeconds: 240
      failureThreshold: 10
    readinessProbe:
      initialDelaySeconds: 30
    pod:
      additionalEnv:
        # Headless initialization: user, organization, project and API keys (FR14, decision 5).
        - name: LANGFUSE_INIT_ORG_ID
          value: ${jsonencode(org_id)}
        - name: LANGFUSE_INIT_ORG_NAME
          value: ${jsonencode(org_name)}
        - name: LANGFUSE_INIT_PROJECT_ID
          value: ${jsonencode(project_id)}
        - name: LANGFUSE_INIT_PROJECT_NAME
          value: ${jsonencode(project_name)}
        - name: LANGFUSE_INIT_PROJECT_PUBLIC_KEY
          value: ${jsonencode(project_public_key)}
        - name: LANGFUSE_INIT_PROJECT_SECRET_KEY
          value: ${jsonencode(project_secret_key)}
        - name: LANGFUSE_INIT_USER_EMAIL
          value: ${jsonencode(admin_email)}
        - name: LANGFUSE_INIT_USER_NAME
          value: ${jsonencode(admin_name)}
        - name: LANGFUSE_INIT_USER_PASSWORD
          value: ${jsonencode(admin_password)}
  worker:
    resources:
      requests:
        cpu: 250m
        memory: 512Mi
      limits:
        memory: 1Gi
    pod:
      additionalEnv:
        # Bind on all interfaces so kubectl port-forward reaches the worker (decision 13).
        - name: HOSTNAME
          value: "0.0.0.0"

# External RDS, bundled PostgreSQL off (FR11). TLS because RDS is public (decision 15).
postgresql:
  deploy: false
  host: ${jsonencode(db_host)}
  port: ${db_port}
  args: "sslmode=require"
  directUrl: ${jsonencode("postgresql://${db_username}:${db_password}@${db_host}:${db_port}/${db_name}?sslmode=require")}
  shadowDatabaseUrl: ""
  auth:
    username: ${jsonencode(db_username)}
    password: ${jsonencode(db_password)}
    database: ${jsonencode(db_name)}

# Bundled ClickHouse, sized for two t3.medium nodes: one replica, no ZooKeeper (FR13).
clickhouse:
  deploy: true
  replicaCount: 1
  resourcesPreset: none
  resources:
    requests:
      cpu: 500m
      memory: 1536Mi
    limits:
      memory: 2Gi
  zookeeper:
    enabled: false
  auth:
    password: ${jsonencode(clickhouse_password)}

# Bundled Redis (Valkey in this chart: service langfuse-redis-primary) (FR13).
redis:
  deploy: true
  auth:
    password: ${jsonencode(redis_password)}
  primary:
    resourcesPreset: none
    resources:
      requests:
        cpu: 100m
        memory: 128Mi
      limits:
        memory: 256Mi

# External S3 through IRSA, bundled MinIO off, no static keys (FR12).
s3:
  deploy: false
  bucket: ${jsonencode(s3_bucket_name)}
  region: ${jsonencode(s3_bucket_region)}
  forcePathStyle: false
  eventUpload:
    prefix: "events/"
  mediaUpload:
    enabled: true
    prefix: "media/"
  batchExport:
    enabled: true
    prefix: "exports/"
